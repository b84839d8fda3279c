"""Ground truth and recall against a float64 brute force, including large-norm vectors."""

from __future__ import annotations

import numpy as np
import pytest

from emily.memory.bench import data


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_ground_truth_is_exact_for_large_norms(metric: str) -> None:
    rng = np.random.default_rng(11)
    # Raw-pixel-like magnitudes: float32 |x|^2 + |y|^2 - 2xy would misrank near neighbours.
    base = (rng.integers(0, 256, (3000, 64)) + 4000).astype(np.float32)
    queries = (rng.integers(0, 256, (20, 64)) + 4000).astype(np.float32)
    base, queries = data.prepare(base, metric), data.prepare(queries, metric)  # type: ignore[arg-type]
    truth = data.ground_truth(base, queries, 10, metric)  # type: ignore[arg-type]
    b64, q64 = base.astype(np.float64), queries.astype(np.float64)
    for i, query in enumerate(q64):
        if metric == "l2":
            expected = np.sort(np.linalg.norm(b64 - query, axis=1))[:10]
        else:
            expected = np.sort(1.0 - b64 @ query)[:10]
        np.testing.assert_allclose(truth[i], expected, rtol=0, atol=1e-9)


def test_recall_counts_ties_and_missing_ids() -> None:
    base = np.array([[0.0], [1.0], [1.0], [5.0]], dtype=np.float32)
    queries = np.array([[0.0]], dtype=np.float32)
    truth = data.ground_truth(base, queries, 2, "l2")
    # id 2 ties with id 1 at distance 1: a hit; -1 (nothing returned) is a miss.
    assert data.recall(base, queries, truth, np.array([[0, 2]]), "l2") == 1.0
    assert data.recall(base, queries, truth, np.array([[0, -1]]), "l2") == 0.5
    assert data.recall(base, queries, truth, np.array([[3, 0]]), "l2") == 0.5


def test_prepare_keeps_zero_vectors() -> None:
    unit = data.prepare(np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32), "cosine")
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, 0.0]])
