"""Concurrent clients: each thread owns one connection (or index handle) and answers its share of
the queries; latency is timed per query, QPS over the wall time of the whole batch.

Threads are enough: the per-query Python work is a few microseconds (pre-encoded parameters,
a prepared statement called through libpq, which releases the GIL while it waits), so the
clients are bounded by the server, not by the interpreter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Client(Protocol):
    def search(self, query: int) -> Sequence[int]:
        """Ids of the nearest rows to query number ``query``, best first."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class Measurement:
    found: np.ndarray  # (queries, k) ids, -1 where fewer than k came back
    latencies_ms: np.ndarray
    wall_seconds: float

    @property
    def qps(self) -> float:
        return len(self.latencies_ms) / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))


def measure(
    factory: Callable[[], Client],
    queries: int,
    clients: int,
    k: int,
    on_query: Callable[[], None] | None = None,
) -> Measurement:
    """Run queries 0..queries-1 over ``clients`` concurrent clients (query i on client i % c)."""
    opened = [factory() for _ in range(clients)]
    found = np.full((queries, k), -1, dtype=np.int64)
    latencies = np.zeros(queries, dtype=np.float64)
    start_line = threading.Barrier(clients + 1)
    failures: list[BaseException] = []

    def work(slot: int, client: Client) -> None:
        try:
            start_line.wait()
            clock = time.perf_counter
            for query in range(slot, queries, clients):
                started = clock()
                ids = client.search(query)
                latencies[query] = clock() - started
                found[query, : len(ids)] = ids[:k]
                if on_query is not None:
                    on_query()
        except BaseException as exc:  # re-raised in the caller's thread below
            failures.append(exc)

    threads = [
        threading.Thread(target=work, args=(slot, client), daemon=True)
        for slot, client in enumerate(opened)
    ]
    try:
        for thread in threads:
            thread.start()
        start_line.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
    finally:
        for client in opened:
            client.close()
    if failures:
        raise failures[0]
    return Measurement(found=found, latencies_ms=latencies * 1000.0, wall_seconds=wall)
