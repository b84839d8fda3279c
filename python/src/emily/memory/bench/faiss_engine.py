"""The in-process ceiling: faiss ``IndexHNSWFlat`` on float32, same m and ef_construction."""

from __future__ import annotations

import os
import time

import faiss
import numpy as np

from emily.memory.bench.models import Metric


def build(
    base: np.ndarray, metric: Metric, m: int, ef_construction: int
) -> tuple[object, float, int]:
    """(index, build seconds, serialized bytes). Cosine runs as inner product on unit vectors."""
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    index = faiss.IndexHNSWFlat(base.shape[1], m, faiss_metric)
    index.hnsw.efConstruction = ef_construction
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    index.add(base)
    seconds = time.perf_counter() - started
    # One query per call from each client thread: OpenMP would only add overhead.
    faiss.omp_set_num_threads(1)
    return index, seconds, int(faiss.serialize_index(index).nbytes)


class FaissClient:
    """Searches one query at a time, like a database client would."""

    def __init__(self, index: object, queries: np.ndarray, k: int) -> None:
        self.index = index
        self.queries = queries
        self.k = k

    def search(self, query: int) -> list[int]:
        _, ids = self.index.search(self.queries[query : query + 1], self.k)  # type: ignore[attr-defined]
        return [int(i) for i in ids[0]]

    def close(self) -> None:
        return None


def set_ef(index: object, ef: int) -> None:
    index.hnsw.efSearch = ef  # type: ignore[attr-defined]
