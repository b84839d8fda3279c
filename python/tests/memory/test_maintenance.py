from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg

from emily.config import Settings
from emily.locator import Endpoints
from emily.memory import maintenance
from emily.memory.migrations import TABLE
from emily.memory.store import MemoryStore
from tests.memory.conftest import make_episodes, widened

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
    # 1999 is outside the default accepted window: only a store told otherwise may write it.
    with MemoryStore(widened(migrated, past_days=366 * 30)) as wide:
        wide.add_many(old + recent)
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


def _maintained_since(endpoints: Endpoints, since: datetime) -> dict[str, tuple[bool, bool]]:
    """Per partition: (vacuumed since, analyzed since), from the statistics views."""
    with psycopg.connect(endpoints.postgres_admin_dsn) as conn:
        return {
            r[0]: (r[1] is not None and r[1] >= since, r[2] is not None and r[2] >= since)
            for r in conn.execute(
                "SELECT s.relname, s.last_vacuum, s.last_analyze FROM pg_inherits i"
                " JOIN pg_stat_user_tables s ON s.relid = i.inhrelid"
                " WHERE i.inhparent = 'episodic_memories'::regclass"
            )
        }


def test_reindex_vacuum_and_partitions_ahead(
    store: MemoryStore, migrated: Settings, endpoints: Endpoints
) -> None:
    store.add_many(make_episodes(np.random.default_rng(10), 3, DIM))
    names = maintenance.reindex(migrated)
    assert names and all(name.endswith("_hnsw") for name in names)
    assert set(names) == set(maintenance.hnsw_indexes(migrated))
    with psycopg.connect(endpoints.postgres_admin_dsn) as conn:
        started = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    assert not all(analyzed for _, analyzed in _maintained_since(endpoints, started).values())
    maintenance.vacuum_analyze(migrated)
    maintained = _maintained_since(endpoints, started)
    # Every partition was vacuumed and analyzed by this call (not only the parent).
    assert maintained and all(v and a for v, a in maintained.values()), maintained
    later = (datetime.now(UTC).date().replace(day=1) + timedelta(days=5 * 31)).replace(day=1)
    # The default window reaches 31 days ahead: partitions ahead stop inside it ...
    ahead = maintenance.ensure_partitions_ahead(migrated, ahead=5)
    assert 1 <= len(ahead) <= 2
    assert f"{TABLE}_y{later.year}m{later.month:02d}" not in ahead
    # ... and a wider window lets them reach further.
    wide = migrated.model_copy(
        update={"database": migrated.database.model_copy(update={"occurred_at_future_days": 200})}
    )
    ahead = maintenance.ensure_partitions_ahead(wide, ahead=5)
    assert len(ahead) == 6
    assert f"{TABLE}_y{later.year}m{later.month:02d}" in ahead
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
