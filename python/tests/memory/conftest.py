"""Memory fixtures: the session stack's database, migrated once, and a store on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from emily.config import Settings
from emily.memory.migrations import migrate
from emily.memory.store import MemoryStore
from emily.stack.manager import Stack

# Tests keep their episodes in the recent past: the retention test drops only very old months.
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="session")
def migrated(stack: Stack, settings: Settings) -> Settings:
    migrate(settings)
    return settings


@pytest.fixture(scope="session")
def store(migrated: Settings) -> Iterator[MemoryStore]:
    with MemoryStore.open(migrated) as opened:
        yield opened


def unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    matrix = rng.standard_normal((n, dim)).astype(np.float32)
    norms: np.ndarray = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / norms


def make_episodes(
    rng: np.random.Generator,
    n: int,
    dim: int,
    *,
    tag: str | None = None,
    start: datetime | None = None,
    **context: Any,
) -> list[dict[str, Any]]:
    """Random episodes with explicit unit embeddings, tagged so a test can find its own rows."""
    tag = tag or uuid.uuid4().hex
    start = start or NOW - timedelta(days=20)
    vectors = unit_vectors(rng, n, dim)
    affects = rng.uniform(-1, 1, size=(n, 3))
    return [
        {
            "content": f"episode {i} of {tag}",
            "occurred_at": start + timedelta(hours=i),
            "affect": [float(x) for x in affects[i]],
            "context": {"tag": tag, "i": i, **context},
            "embedding": [float(x) for x in vectors[i]],
        }
        for i in range(n)
    ]
