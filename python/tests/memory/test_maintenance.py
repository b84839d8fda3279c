from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg

from emily.config import Settings
from emily.locator import Endpoints
from emily.memory import maintenance
from emily.memory.migrations import TABLE
from emily.memory.store import MemoryStore
from tests.memory.conftest import make_episodes

DIM = 384


def _partitions(endpoints: Endpoints) -> set[str]:
    with psycopg.connect(endpoints.postgres_admin_dsn) as conn:
        return {
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'episodic_memories'::regclass"
            )
        }


def test_insert_creates_partitions_for_its_months(store: MemoryStore, endpoints: Endpoints) -> None:
    episodes = make_episodes(np.random.default_rng(5), 2, DIM)
    episodes[0]["occurred_at"] = datetime(2019, 3, 31, 23, 30, tzinfo=UTC)
    # 01:30 at +03:00 is still March 31st in UTC: partitions are UTC months.
    episodes[1]["occurred_at"] = datetime.fromisoformat("2019-04-01T01:30:00+03:00")
    assert f"{TABLE}_y2019m03" not in _partitions(endpoints)
    store.add_many(episodes)
    assert f"{TABLE}_y2019m03" in _partitions(endpoints)
    assert f"{TABLE}_y2019m04" not in _partitions(endpoints)


def test_stats_report_rows_sizes_and_partitions(store: MemoryStore, migrated: Settings) -> None:
    store.add_many(make_episodes(np.random.default_rng(6), 3, DIM))
    result = maintenance.stats(migrated)
    assert result.rows == store.count()
    assert result.rows == sum(p.rows for p in result.partitions)
    assert result.index_bytes > 0 and result.table_bytes > 0
    assert 0.0 <= result.bloat_ratio <= 1.0
    current = datetime.now(UTC).date().replace(day=1)
    [this_month] = [p for p in result.partitions if p.month == current]
    assert "FOR VALUES FROM" in this_month.range


def test_retention_drops_only_old_partitions(store: MemoryStore, migrated: Settings) -> None:
    old = make_episodes(np.random.default_rng(8), 3, DIM, start=datetime(1999, 6, 2, tzinfo=UTC))
    recent = make_episodes(np.random.default_rng(9), 2, DIM)
    store.add_many(old + recent)
    before = store.count()
    # 12 * 25 months back is 25 years ago: only the 1990s partitions are that old.
    dropped = maintenance.apply_retention(migrated, months=12 * 25)
    assert f"{TABLE}_y1999m06" in dropped
    assert all(maintenance.partition_month(name) < date(2001, 1, 1) for name in dropped)  # type: ignore[operator]
    assert store.count() == before - 3
    assert maintenance.apply_retention(migrated, months=12 * 25) == []
    assert maintenance.apply_retention(migrated) == []  # retention unset in settings: keep all


def test_retention_cutoff_arithmetic() -> None:
    assert maintenance.retention_cutoff(1, date(2026, 1, 15)) == date(2025, 12, 1)
    assert maintenance.retention_cutoff(14, date(2026, 3, 1)) == date(2025, 1, 1)


def test_reindex_vacuum_and_partitions_ahead(store: MemoryStore, migrated: Settings) -> None:
    store.add_many(make_episodes(np.random.default_rng(10), 3, DIM))
    names = maintenance.reindex(migrated)
    assert names and all(name.endswith("_hnsw") for name in names)
    assert set(names) == set(maintenance.hnsw_indexes(migrated))
    maintenance.vacuum_analyze(migrated)
    ahead = maintenance.ensure_partitions_ahead(migrated, ahead=5)
    next_month = (datetime.now(UTC).date().replace(day=1) + timedelta(days=32)).replace(day=1)
    assert len(ahead) == 6
    assert f"{TABLE}_y{next_month.year}m{next_month.month:02d}" in ahead
    results = store.search(mode="affective", affect=[0, 0, 0], k=5)
    assert len(results) == 5


def test_concurrent_writers_into_a_new_month(store: MemoryStore, endpoints: Endpoints) -> None:
    """Threads share one store (as the agents do) and race to create the same partition."""
    from concurrent.futures import ThreadPoolExecutor

    batches = [
        make_episodes(np.random.default_rng(50 + i), 5, DIM, start=datetime(2018, 5, 3, tzinfo=UTC))
        for i in range(4)
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(store.add_many, batches))
    assert sorted(len(ids) for ids in results) == [5, 5, 5, 5]
    assert len({i for ids in results for i in ids}) == 20
    assert f"{TABLE}_y2018m05" in _partitions(endpoints)
