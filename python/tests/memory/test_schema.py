from __future__ import annotations

import psycopg
import pytest

from emily.config import Settings
from emily.locator import Endpoints
from emily.memory.migrations import MIGRATIONS, TABLE, migrate, months_ahead, partitions_ahead


def test_migrate_twice_is_idempotent(migrated: Settings, endpoints: Endpoints) -> None:
    assert migrate(migrated) == []
    assert migrate(migrated) == []
    with psycopg.connect(endpoints.postgres_admin_dsn) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        extensions = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
        column = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'episodic_memories'::regclass AND attname = 'embedding'"
        ).fetchone()
    assert sorted(versions) == [m.version for m in MIGRATIONS]
    assert {"vector", "pg_stat_statements"} <= extensions
    assert column == (f"halfvec({migrated.database.embedding_dim})",)


def test_partitions_created_ahead_with_indexes(migrated: Settings, endpoints: Endpoints) -> None:
    expected = [f"{TABLE}_y{m.year:04d}m{m.month:02d}" for m in partitions_ahead(migrated)]
    with psycopg.connect(endpoints.postgres_admin_dsn) as conn:
        children = {
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'episodic_memories'::regclass"
            )
        }
        indexes = {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", (expected[0],)
            )
        }
    assert set(expected) <= children
    embedding_index = indexes[f"{expected[0]}_embedding_hnsw"]
    assert "hnsw" in embedding_index and "halfvec_cosine_ops" in embedding_index
    assert f"m='{migrated.database.hnsw_m}'" in embedding_index
    assert "vector_l2_ops" in indexes[f"{expected[0]}_affect_hnsw"]
    assert "jsonb_path_ops" in indexes[f"{expected[0]}_context_gin"]
    assert f"{expected[0]}_occurred_at" in indexes


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE intruder (x int)",
        "DROP TABLE episodic_memories",
        "ALTER TABLE episodic_memories ADD COLUMN x int",
        "TRUNCATE episodic_memories",
        "UPDATE episodic_memories SET content = 'x'",
    ],
)
def test_app_role_is_least_privilege(
    migrated: Settings, endpoints: Endpoints, statement: str
) -> None:
    with psycopg.connect(endpoints.postgres_dsn) as conn:
        user = conn.execute("SELECT current_user").fetchone()
        assert user == (migrated.database.app_role,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_app_role_can_use_its_grants(migrated: Settings, endpoints: Endpoints) -> None:
    with psycopg.connect(endpoints.postgres_dsn) as conn:
        conn.execute("SELECT count(*) FROM episodic_memories").fetchone()
        row = conn.execute("SELECT emily_ensure_partition('2026-01-15')").fetchone()
    assert row == (f"{TABLE}_y2026m01",)


def test_months_ahead_wraps_the_year() -> None:
    from datetime import date

    assert months_ahead(2, date(2025, 11, 30)) == [
        date(2025, 11, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
    ]


def _external(settings: Settings, endpoints: Endpoints, **database: object) -> Settings:
    from pydantic import SecretStr

    update = {
        "dsn": SecretStr(endpoints.postgres_dsn),
        "admin_dsn": SecretStr(endpoints.postgres_admin_dsn),
        **database,
    }
    return settings.model_copy(update={"database": settings.database.model_copy(update=update)})


def test_external_dsn_only_grants(migrated: Settings, endpoints: Endpoints) -> None:
    assert migrate(_external(migrated, endpoints)) == []
    with psycopg.connect(endpoints.postgres_dsn) as conn:  # the password was left alone
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_external_dsn_needs_an_existing_role(migrated: Settings, endpoints: Endpoints) -> None:
    from emily.errors import ConfigError

    with pytest.raises(ConfigError, match="does not exist"):
        migrate(_external(migrated, endpoints, app_role="nobody_here"))


def test_dimension_mismatch_is_refused(migrated: Settings) -> None:
    from emily.memory.errors import SchemaMismatchError

    other = migrated.model_copy(
        update={"database": migrated.database.model_copy(update={"embedding_dim": 16})}
    )
    with pytest.raises(SchemaMismatchError, match=r"halfvec\(384\).*halfvec\(16\)"):
        migrate(other)


def test_migration_3_adds_the_key_and_folds_earlier_duplicates(
    migrated: Settings, endpoints: Endpoints
) -> None:
    """A database from before the idempotency key (versions 1-2), holding a file ingested
    twice: the store refuses the old schema in one line; migrating keeps one copy of each."""
    from psycopg import sql as psql

    from emily.memory.errors import MemoryStoreError
    from emily.memory.store import MemoryStore
    from tests.memory.conftest import fresh_database

    with fresh_database(migrated, endpoints) as old:
        admin = old.database.admin_dsn
        assert admin is not None
        with psycopg.connect(admin.get_secret_value()) as conn:
            conn.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for migration in MIGRATIONS[:2]:
                for statement in migration.statements(old):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            conn.execute(
                psql.SQL(
                    "CREATE TABLE {} PARTITION OF episodic_memories"
                    " FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')"
                ).format(psql.Identifier(f"{TABLE}_y2026m01"))
            )
            rows = [("twice", "2026-01-05T10:00:00+00"), ("once", "2026-01-06T10:00:00+00")]
            for content, at in [rows[0], rows[0], rows[1]]:
                conn.execute(
                    "INSERT INTO episodic_memories (occurred_at, content, affect, context)"
                    " VALUES (%s, %s, '[0,0,0]', '{\"k\": 1}')",
                    (at, content),
                )
        migrate(old)  # grants for the app role (versions 1-2 exist, so only 3 is new) ...
        with psycopg.connect(admin.get_secret_value()) as conn:
            conn.execute("DELETE FROM schema_migrations WHERE version = 3")
        with pytest.raises(MemoryStoreError, match="at version 2, this release needs 3"):
            MemoryStore.open(old)
        with psycopg.connect(admin.get_secret_value()) as conn:
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (3, 'x')")
            contents = sorted(r[0] for r in conn.execute("SELECT content FROM episodic_memories"))
            keys = conn.execute(
                "SELECT count(DISTINCT idempotency_key) FROM episodic_memories"
            ).fetchone()
    assert contents == ["once", "twice"]
    assert keys == (2,)
