"""Is an async memory store worth it? ``asyncio.to_thread(MemoryStore.search)`` (what the agents
do) against an ``AsyncConnectionPool`` running the very same SQL (``store._prepare``), at 1, 8
and 32 concurrent searches. Starts its own PostgreSQL in a temporary state dir; JSON on stdout.

    cd python && .venv/bin/python -m tests.bench.async_probe [OUT.json]

Not a test (nothing here is timed by pytest); the figures and the decision are in
docs/memory.md ("Why the store stays synchronous").
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pgvector.psycopg import register_vector_async
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from emily.config import Settings
from emily.locator import postgres_dsn
from emily.memory.migrations import migrate
from emily.memory.store import MemoryStore
from emily.stack.manager import Stack
from tests.conftest import make_settings

ROWS, DIM, QUERIES, BATCH = 4_000, 384, 400, 500


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    matrix = rng.standard_normal((n, DIM)).astype(np.float32)
    unit: np.ndarray = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return unit


async def _timed(
    queries: list[list[float]], concurrency: int, one: Callable[[list[float]], Awaitable[None]]
) -> tuple[float, list[float]]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def run(query: list[float]) -> None:
        async with gate:
            start = time.perf_counter()
            await one(query)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(run(q) for q in queries))
    return time.perf_counter() - start, latencies


async def _measure(settings: Settings) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(1)
    store = MemoryStore.open(settings)
    start = datetime.now(UTC) - timedelta(days=20)
    base = _unit(rng, ROWS)
    for low in range(0, ROWS, BATCH):
        store.add_many(
            [
                {
                    "content": f"episode {i}",
                    "occurred_at": start + timedelta(seconds=i),
                    "affect": rng.uniform(-1, 1, 3).tolist(),
                    "embedding": base[i].tolist(),
                }
                for i in range(low, low + BATCH)
            ]
        )
    queries = [v.tolist() for v in _unit(rng, QUERIES)]
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        postgres_dsn(settings),
        min_size=1,
        max_size=settings.database.pool_max_size,
        configure=register_vector_async,
        check=AsyncConnectionPool.check_connection,
        open=False,
    )
    await pool.open(wait=True)

    async def threaded(query: list[float]) -> None:
        await asyncio.to_thread(store.search, query_vector=query, k=10)

    async def native(query: list[float]) -> None:
        _, sql, params = store._prepare(None, query, {"k": 10})
        async with pool.connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT set_config('hnsw.ef_search', '80', true),"
                " set_config('hnsw.iterative_scan', 'relaxed_order', true)"
            )
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(sql, params)
            await cursor.fetchall()

    out: dict[str, dict[str, float]] = {}
    for concurrency in (1, 8, 32):
        for label, one in (("to_thread", threaded), ("async_pool", native)):
            runs = []
            for _ in range(3):
                wall, latencies = await _timed(queries, concurrency, one)
                cuts = statistics.quantiles(latencies, n=100)
                runs.append((QUERIES / wall, cuts[49] * 1000, cuts[94] * 1000))
            qps, p50, p95 = sorted(runs)[1]
            out[f"{label}@{concurrency}"] = {
                "qps": round(qps, 1),
                "p50_ms": round(p50, 2),
                "p95_ms": round(p95, 2),
            }
    await pool.close()
    store.close()
    return out


def main() -> None:
    """Measure; the JSON goes to the file named by the first argument, else to stdout (after
    the stack's log lines)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp))
        stack = Stack(settings)
        stack.up(["postgres"])
        try:
            migrate(settings)
            text = json.dumps(asyncio.run(_measure(settings)), indent=1)
            if len(sys.argv) > 1:
                Path(sys.argv[1]).write_text(text + "\n", encoding="utf-8")
            else:
                print(text)
        finally:
            stack.down()


if __name__ == "__main__":
    main()
