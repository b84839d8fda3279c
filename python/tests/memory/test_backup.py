from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from emily.config import Settings
from emily.locator import Endpoints
from emily.memory.backup import BackupError, backup, restore
from emily.memory.store import MemoryStore
from tests.memory.conftest import make_episodes, unit_vectors


def _in(dsn: str, dbname: str) -> str:
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo("", **params)


def test_backup_restore_into_scratch_database(
    store: MemoryStore, migrated: Settings, endpoints: Endpoints, tmp_path: Path
) -> None:
    store.add_many(make_episodes(np.random.default_rng(31), 20, 384))
    query = unit_vectors(np.random.default_rng(32), 1, 384)[0]
    expected = [(r.id, r.content) for r in store.search(query_vector=query, k=5, ef_search=200)]
    rows = store.count()
    path = backup(migrated, tmp_path / "memory.dump")
    assert path.stat().st_size > 0
    scratch = f"restore_{uuid.uuid4().hex[:8]}"
    assert restore(migrated, path, into=scratch) == scratch
    app_dsn = _in(endpoints.postgres_dsn, scratch)
    scratch_settings = migrated.model_copy(
        update={
            "database": migrated.database.model_copy(
                update={
                    "dsn": SecretStr(app_dsn),
                    "admin_dsn": SecretStr(_in(endpoints.postgres_admin_dsn, scratch)),
                }
            )
        }
    )
    with MemoryStore(scratch_settings) as restored:
        assert restored.count() == rows
        got = [(r.id, r.content) for r in restored.search(query_vector=query, k=5, ef_search=200)]
    assert got == expected
    with psycopg.connect(endpoints.postgres_admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')


def test_restore_errors_are_typed(migrated: Settings, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="does not exist"):
        restore(migrated, tmp_path / "missing.dump")
    with pytest.raises(BackupError, match="already exists"):
        (tmp_path / "x.dump").write_bytes(b"not a dump")
        restore(migrated, tmp_path / "x.dump", into="postgres")
    with pytest.raises(BackupError, match="pg_restore failed"):
        restore(migrated, tmp_path / "x.dump", into=f"bad_{uuid.uuid4().hex[:8]}")
    with pytest.raises(BackupError, match="directory"):
        backup(migrated, tmp_path)
