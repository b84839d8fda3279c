"""Backups are private files; restores are atomic, in place or ``--into``, from real backups of
a partitioned schema, and a failed restore changes nothing (no half-restored live database, no
empty database left behind, no other database of the server touched)."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from emily.cli import app
from emily.config import Settings
from emily.locator import Endpoints
from emily.memory.backup import BackupError, backup, restore
from emily.memory.migrations import migrate
from emily.memory.store import MemoryStore
from tests.memory.conftest import (
    NOW,
    cli_env,
    fresh_database,
    in_database,
    make_episodes,
    unit_vectors,
)

DIM = 384


@pytest.fixture
def memory_db(migrated: Settings, endpoints: Endpoints) -> Iterator[Settings]:
    """A migrated database of its own (a restore in place replaces it), with episodes in three
    monthly partitions and a second schema standing in for the agents' checkpoints."""
    with fresh_database(migrated, endpoints) as settings:
        migrate(settings)
        with MemoryStore(settings) as store:
            for months_back, seed in ((0, 1), (1, 2), (2, 3)):
                start = NOW - timedelta(days=31 * months_back + 1)
                store.add_many(make_episodes(np.random.default_rng(seed), 4, DIM, start=start))
        with psycopg.connect(_admin(settings)) as conn:
            conn.execute("CREATE SCHEMA checkpoints_here")
            conn.execute("CREATE TABLE checkpoints_here.t AS SELECT 42 AS answer")
        yield settings


def _admin(settings: Settings) -> str:
    assert settings.database.admin_dsn is not None
    return settings.database.admin_dsn.get_secret_value()


def _snapshot(settings: Settings) -> dict[str, object]:
    """What a restore must bring back (or leave alone)."""
    with psycopg.connect(_admin(settings)) as conn:
        per_partition = conn.execute(
            "SELECT tableoid::regclass::text, count(*), array_agg(id ORDER BY id)"
            " FROM episodic_memories GROUP BY 1 ORDER BY 1"
        ).fetchall()
        partitions = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'episodic_memories'::regclass ORDER BY 1"
            )
        ]
        answer = conn.execute("SELECT answer FROM checkpoints_here.t").fetchone()
    return {"rows": per_partition, "partitions": partitions, "other_schema": answer}


def _databases(endpoints: Endpoints) -> set[str]:
    with psycopg.connect(endpoints.postgres_admin_dsn) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def _truncated(dump: Path, tmp_path: Path) -> Path:
    broken = tmp_path / "truncated.dump"
    data = dump.read_bytes()
    broken.write_bytes(data[: len(data) * 2 // 3])
    return broken


def test_backup_file_is_private_and_a_failed_backup_keeps_the_old_one(
    memory_db: Settings, tmp_path: Path
) -> None:
    path = backup(memory_db, tmp_path / "private" / "memory.dump")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    good = path.read_bytes()
    wrong = memory_db.database.model_copy(
        update={"admin_dsn": SecretStr(in_database(_admin(memory_db), "no_such_database"))}
    )
    with pytest.raises(BackupError, match="pg_dump failed"):
        backup(memory_db.model_copy(update={"database": wrong}), path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in path.parent.iterdir()) == ["memory.dump"]  # no partial left


def test_restore_in_place_replaces_the_database_atomically(
    memory_db: Settings, endpoints: Endpoints, tmp_path: Path
) -> None:
    before = _snapshot(memory_db)
    assert len(before["partitions"]) >= 3  # type: ignore[arg-type]
    dump = backup(memory_db, tmp_path / "b.dump")
    others = _databases(endpoints)
    session_rows = _count(endpoints.postgres_admin_dsn)
    # A running app holds pooled connections while the restore swaps the database under it.
    with MemoryStore.open(memory_db) as running:
        running.add_many(make_episodes(np.random.default_rng(9), 5, DIM))  # after the backup
        with psycopg.connect(_admin(memory_db)) as conn:
            conn.execute("UPDATE checkpoints_here.t SET answer = 0")
        assert _snapshot(memory_db) != before
        assert restore(memory_db, dump) == _dbname(memory_db)
        assert _snapshot(memory_db) == before
        # The pool noticed its connections were terminated and replaced them.
        assert running.count() == sum(r[1] for r in before["rows"])  # type: ignore[attr-defined]
        query = unit_vectors(np.random.default_rng(4), 1, DIM)[0]
        assert len(running.search(query_vector=query, k=3)) == 3
    assert _databases(endpoints) == others  # nothing left behind, nothing else touched
    assert _count(endpoints.postgres_admin_dsn) == session_rows


def test_failed_restore_in_place_changes_nothing(
    memory_db: Settings, endpoints: Endpoints, tmp_path: Path
) -> None:
    dump = backup(memory_db, tmp_path / "b.dump")
    with MemoryStore(memory_db) as store:
        store.add_many(make_episodes(np.random.default_rng(10), 3, DIM))  # not in the backup
    before = _snapshot(memory_db)
    others = _databases(endpoints)
    with pytest.raises(BackupError, match="pg_restore failed"):
        restore(memory_db, _truncated(dump, tmp_path))
    assert _snapshot(memory_db) == before
    assert _databases(endpoints) == others
    with psycopg.connect(endpoints.postgres_admin_dsn) as conn:
        allowed = conn.execute(
            "SELECT datallowconn FROM pg_database WHERE datname = %s", (_dbname(memory_db),)
        ).fetchone()
    assert allowed == (True,)


def test_restore_into_a_new_database(
    memory_db: Settings, endpoints: Endpoints, tmp_path: Path
) -> None:
    query = unit_vectors(np.random.default_rng(32), 1, DIM)[0]
    with MemoryStore(memory_db) as store:
        expected = [(r.id, r.content) for r in store.search(query_vector=query, k=5)]
    dump = backup(memory_db, tmp_path / "memory.dump")
    scratch = f"restore_{uuid.uuid4().hex[:8]}"
    assert restore(memory_db, dump, into=scratch) == scratch
    copy = memory_db.database.model_copy(
        update={
            "dsn": SecretStr(in_database(endpoints.postgres_dsn, scratch)),
            "admin_dsn": SecretStr(in_database(endpoints.postgres_admin_dsn, scratch)),
        }
    )
    try:
        with MemoryStore(memory_db.model_copy(update={"database": copy})) as restored:
            assert [(r.id, r.content) for r in restored.search(query_vector=query, k=5)] == (
                expected
            )
    finally:
        with psycopg.connect(endpoints.postgres_admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')


def test_failed_restore_into_leaves_no_database(
    memory_db: Settings, endpoints: Endpoints, tmp_path: Path
) -> None:
    dump = backup(memory_db, tmp_path / "b.dump")
    others = _databases(endpoints)
    target = f"never_{uuid.uuid4().hex[:8]}"
    with pytest.raises(BackupError, match="pg_restore failed"):
        restore(memory_db, _truncated(dump, tmp_path), into=target)
    assert _databases(endpoints) == others


def test_backup_then_restore_in_place_from_the_cli(
    memory_db: Settings, endpoints: Endpoints, tmp_path: Path
) -> None:
    """The probe's repro: `emily memory backup b.dump && emily memory restore b.dump`."""
    before = _snapshot(memory_db)
    dump = tmp_path / "b.dump"
    runner = CliRunner()
    base = ["--state-dir", str(memory_db.state_dir), "memory"]
    done = runner.invoke(app, [*base, "backup", str(dump)], env=cli_env(memory_db))
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, [*base, "restore", str(dump)], env=cli_env(memory_db))
    assert done.exit_code == 0, done.output
    assert f"restored into database {_dbname(memory_db)}" in done.stdout
    assert _snapshot(memory_db) == before


def test_restore_errors_are_typed(migrated: Settings, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="does not exist"):
        restore(migrated, tmp_path / "missing.dump")
    (tmp_path / "x.dump").write_bytes(b"not a dump")
    with pytest.raises(BackupError, match="already exists"):
        restore(migrated, tmp_path / "x.dump", into="postgres")
    with pytest.raises(BackupError, match="pg_restore failed"):
        restore(migrated, tmp_path / "x.dump", into=f"bad_{uuid.uuid4().hex[:8]}")
    with pytest.raises(BackupError, match="field 'into'"):
        restore(migrated, tmp_path / "x.dump", into="a\x00b")
    with pytest.raises(BackupError, match="field 'into'"):
        restore(migrated, tmp_path / "x.dump", into="x" * 64)
    with pytest.raises(BackupError, match="directory"):
        backup(migrated, tmp_path)


def _dbname(settings: Settings) -> str:
    from emily.memory.backup import database_name

    return database_name(settings)


def _count(admin_dsn: str) -> int:
    with psycopg.connect(admin_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM episodic_memories").fetchone()
    return int(row[0]) if row else 0
