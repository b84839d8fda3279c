"""Input matrices, exact ground truth and recall.

Any 2-D float matrix works; values are checked once here so the engines can trust them.
Recall follows ann-benchmarks: a returned id counts when its true distance is within
``RECALL_EPSILON`` of the k-th true distance, so ties and half-precision storage do not count
as misses of an exact search.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from emily.memory.bench.errors import BenchInputError
from emily.memory.bench.models import Metric

RECALL_EPSILON = 1e-3
_GT_BATCH = 1024
_GT_MARGIN = 32


def load_matrix(path: Path) -> np.ndarray:
    """A ``.npy`` float matrix as float32; a ``BenchInputError`` naming the file otherwise."""
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise BenchInputError("file not found", field=str(path)) from exc
    except (OSError, ValueError, EOFError) as exc:
        raise BenchInputError(f"not a .npy array file ({exc})", field=str(path)) from exc
    if not isinstance(array, np.ndarray):  # an .npz archive loads as a mapping
        raise BenchInputError("expected one .npy array, got an archive", field=str(path))
    return validate_matrix(array, str(path))


def validate_matrix(array: np.ndarray, name: str) -> np.ndarray:
    """Check shape and values; return a C-contiguous float32 copy-free view when possible."""
    if array.ndim != 2:
        raise BenchInputError(f"expected a 2-D matrix, got shape {array.shape}", field=name)
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise BenchInputError(f"matrix is empty (shape {array.shape})", field=name)
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
        raise BenchInputError(f"expected float16 or float32 values, got {array.dtype}", field=name)
    matrix = np.ascontiguousarray(array, dtype=np.float32)
    bad = ~np.isfinite(matrix).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BenchInputError("NaN or infinite value", field=name, row=row)
    return matrix


def check_pair(base: np.ndarray, queries: np.ndarray, k: int, names: tuple[str, str]) -> None:
    """Base and queries must agree on the dimension, and the base must hold at least k rows."""
    if base.shape[1] != queries.shape[1]:
        raise BenchInputError(
            f"dimension {queries.shape[1]} differs from the base's {base.shape[1]}",
            field=names[1],
        )
    if k < 1:
        raise BenchInputError(f"k must be at least 1, got {k}", field="k")
    if base.shape[0] < k:
        raise BenchInputError(f"base has {base.shape[0]} rows, fewer than k={k}", field=names[0])


def prepare(matrix: np.ndarray, metric: Metric) -> np.ndarray:
    """Cosine: unit-normalise so every engine can rank by inner product."""
    if metric == "l2":
        return matrix
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    # A zero vector has no direction; leave it at zero rather than divide by zero.
    return np.ascontiguousarray(matrix / np.where(norms == 0, 1.0, norms), dtype=np.float32)


def distances(base: np.ndarray, queries: np.ndarray, ids: np.ndarray, metric: Metric) -> np.ndarray:
    """True distance (float64) from each query to each of its ids (-1 = missing: +inf)."""
    safe = np.where(ids < 0, 0, ids)
    picked = base[safe].astype(np.float64)  # (nq, k, dim)
    wanted = queries.astype(np.float64)
    if metric == "cosine":
        dist = 1.0 - np.einsum("qd,qkd->qk", wanted, picked)
    else:
        dist = np.linalg.norm(picked - wanted[:, None, :], axis=2)
    return np.where(ids < 0, np.inf, dist)


def ground_truth(base: np.ndarray, queries: np.ndarray, k: int, metric: Metric) -> np.ndarray:
    """Exact k-NN distances (nq, k), by brute force in batches.

    faiss IndexFlat ranks candidates fast, but its BLAS form (|x|^2 + |y|^2 - 2xy in float32)
    loses digits on large-norm vectors (raw pixels); so it only shortlists ``k + margin``
    candidates, whose distances are then recomputed directly in float64.
    """
    dim = base.shape[1]
    index = faiss.IndexFlatIP(dim) if metric == "cosine" else faiss.IndexFlatL2(dim)
    index.add(base)
    shortlist = min(len(base), k + _GT_MARGIN)
    # Bound the float64 (batch, shortlist, dim) block to ~128 MB.
    step = max(1, min(_GT_BATCH, 2**24 // (shortlist * dim)))
    out = np.empty((len(queries), k), dtype=np.float64)
    for start in range(0, len(queries), step):
        batch = queries[start : start + step]
        _, ids = index.search(batch, shortlist)
        exact = np.sort(distances(base, batch, ids, metric), axis=1)
        out[start : start + step] = exact[:, :k]
    return out


def recall(
    base: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    found: np.ndarray,
    metric: Metric,
) -> float:
    """Mean fraction of the k returned ids that are true k-nearest neighbours."""
    k = truth.shape[1]
    actual = distances(base, queries, found[:, :k], metric)
    threshold = truth[:, k - 1 : k] + RECALL_EPSILON
    return float((actual <= threshold).sum() / (len(queries) * k))
