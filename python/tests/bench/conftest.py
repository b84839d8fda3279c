"""Small synthetic matrices for the benchmark tests (real stack, real engines)."""

from __future__ import annotations

import numpy as np
import pytest

from emily.config import Settings
from emily.memory.bench.models import BenchReport
from emily.memory.bench.runner import run_benchmark
from emily.stack.manager import Stack

N, DIM, NQ = 2000, 32, 100


@pytest.fixture(scope="session")
def matrices() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    base = rng.standard_normal((N, DIM)).astype(np.float32)
    queries = rng.standard_normal((NQ, DIM)).astype(np.float32)
    return base, queries


@pytest.fixture(scope="session")
def f16_report(
    stack: Stack, settings: Settings, matrices: tuple[np.ndarray, np.ndarray]
) -> BenchReport:
    """Every engine, float16 input, cosine, halfvec storage."""
    base, queries = matrices
    return run_benchmark(
        settings,
        base.astype(np.float16),
        queries.astype(np.float16),
        metric="cosine",
        efs=(10, 200),
        clients=(1, 2),
        exact_queries=40,
    )
