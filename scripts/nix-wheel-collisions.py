#!/usr/bin/env python3
"""Files two wheels of the runtime closure both install, as pyproject.nix's venv builder sees them.

pyproject.nix links every package's output into one virtualenv and raises FileCollisionError
when two packages install the same path with different content (identical files are accepted;
bytecode is ignored). uv installs wheels into one site-packages and keeps every wheel's RECORD
(path + sha256), so python/.venv, synced from the same uv.lock, tells which paths are shared and
whether they are byte-identical, without building anything.

stdin: the JSON nix/checks/uv2nix.nix prints ({"linked": [...], "ignoreCollisions": [...]}).
argv[1] (optional): a site-packages folder other than python/.venv's.
Exit 1 when a shared path differs and no venvIgnoreCollisions pattern covers it.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import re
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> int:
    plan = json.load(sys.stdin)
    linked = {normalize(n) for n in plan["linked"]}
    ignore = plan.get("ignoreCollisions", [])
    # argv[1] (optional): another site-packages, e.g. to try the check on a crafted one.
    venv_lib = ROOT / "python" / ".venv" / "lib"
    sites = (
        [Path(sys.argv[1])]
        if len(sys.argv) > 1
        else sorted(venv_lib.glob("python3*/site-packages"))
    )
    if not sites:
        print("wheel collisions: skipped (python/.venv missing; `make python-env` creates it)")
        return 0
    site = sites[0]
    lock = tomllib.loads((ROOT / "python" / "uv.lock").read_text())
    # A package may be locked at several versions (one per resolution marker, e.g. per Python).
    locked: dict[str, set[str]] = defaultdict(set)
    for package in lock["package"]:
        locked[normalize(package["name"])].add(package.get("version", ""))

    owners: dict[str, dict[str, str]] = defaultdict(dict)
    unchecked = []
    seen = set()
    for record in site.glob("*.dist-info/RECORD"):
        stem = record.parent.name.removesuffix(".dist-info")
        name, _, version = stem.rpartition("-")
        dist = normalize(name)
        if dist not in linked:
            continue
        if version not in locked.get(dist, set()):
            unchecked.append(
                f"{dist} {version} (lock: {', '.join(sorted(locked.get(dist, set())))})"
            )
            continue
        seen.add(dist)
        with record.open(newline="") as fh:
            for row in csv.reader(fh):
                if len(row) < 2 or not row[1]:
                    continue  # RECORD itself, or unhashed entries
                path = row[0]
                venv_path = (
                    "bin/" + path.split("/bin/", 1)[1]
                    if path.startswith("../") and "/bin/" in path
                    else f"lib/{site.parent.name}/site-packages/{path}"
                )
                owners[venv_path][dist] = row[1]
    missing = sorted(
        n for n in linked - seen if n not in {normalize(u.split()[0]) for u in unchecked}
    )

    shared = {p: o for p, o in owners.items() if len(o) > 1}
    differing = {p: o for p, o in shared.items() if len(set(o.values())) > 1}
    uncovered = [p for p in differing if not any(fnmatch.fnmatch(p, pat) for pat in ignore)]
    pairs = Counter(" + ".join(sorted(o)) for o in shared.values())
    detail = "; ".join(f"{k}: {v}" for k, v in pairs.most_common())
    if uncovered:
        print(
            "wheel collisions: files installed by two packages with different content:",
            file=sys.stderr,
        )
        for path in sorted(uncovered)[:20]:
            print(f"  {path}: {', '.join(sorted(differing[path]))}", file=sys.stderr)
        print(
            "  pyproject.nix's venv builder refuses these: list them in the runtime venv's "
            "venvIgnoreCollisions (pkgs/emily.nix) or drop one of the packages.",
            file=sys.stderr,
        )
        return 1
    note = ""
    if unchecked or missing:
        count = len(unchecked) + len(missing)
        note = f"; {count} linked package(s) not in python/.venv at the locked version, unchecked"
    same = (
        "all byte-identical"
        if not differing
        else f"{len(differing)} differing, in venvIgnoreCollisions"
    )
    print(
        f"wheel collisions: {len(shared)} paths installed by more than one "
        f"of {len(seen)} packages, "
        f"{same} ({detail or 'none'}){note}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
