"""A real restart of the session's PostgreSQL (by our stack code) under a store with pooled
connections: the request in flight fails with a typed error, every request after the restart
succeeds, the very first included, because the pool checks connections before lending them."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psycopg

from emily.config import Settings
from emily.locator import Endpoints
from emily.memory.errors import MemoryStoreError
from emily.memory.store import MemoryStore
from emily.stack.manager import Stack
from tests.memory.conftest import unit_vectors


def _hold(store: MemoryStore, seconds: float) -> None:
    with store._transaction() as conn:
        conn.execute("SELECT pg_sleep(%s)", (seconds,))


def _wait_for_sleeper(endpoints: Endpoints) -> None:
    deadline = time.monotonic() + 30
    with psycopg.connect(endpoints.postgres_admin_dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(%'"
                " AND state = 'active' AND pid <> pg_backend_pid()"
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the in-flight query never started")


def test_a_postgres_restart_costs_only_the_request_in_flight(
    migrated: Settings, endpoints: Endpoints
) -> None:
    stack = Stack(migrated)
    record = stack.record("postgres")
    assert record is not None
    with MemoryStore.open(migrated) as store:
        # Several pooled connections, all idle (and so all stale after the restart).
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda _: _hold(store, 0.3), range(4)))
        failures: list[BaseException] = []

        def in_flight() -> None:
            try:
                _hold(store, 60)
            except BaseException as exc:
                failures.append(exc)

        worker = threading.Thread(target=in_flight)
        worker.start()
        try:
            _wait_for_sleeper(endpoints)
            Stack(migrated).down(["postgres"])
        finally:
            # The server is shared by the whole test session: it must come back, whatever
            # happened above.
            Stack(migrated).up(["postgres"])
        worker.join(60)
        assert not worker.is_alive()
        assert len(failures) == 1 and isinstance(failures[0], MemoryStoreError), failures
        assert "nothing of this transaction was written" in str(failures[0])
        after = Stack(migrated).record("postgres")
        assert after is not None and after.port == record.port and after.pid != record.pid
        # Every request after the restart succeeds, the first one included; more requests
        # than the pool held connections, so each stale one is met (and replaced).
        query = unit_vectors(np.random.default_rng(1), 1, migrated.database.embedding_dim)[0]
        for _ in range(migrated.database.pool_max_size + 2):
            assert store.count() >= 0
        with ThreadPoolExecutor(max_workers=4) as pool:
            found = list(pool.map(lambda _: store.search(query_vector=query, k=1), range(8)))
        assert all(len(hits) <= 1 for hits in found)
