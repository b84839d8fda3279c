"""SQL of the write path: a batch is staged in a per-connection temp table with binary ``COPY``,
then inserted with ``ON CONFLICT DO NOTHING`` on the idempotency key, so an episode already
stored (by an earlier run of the same file, say) is skipped and reported, not duplicated.

``COPY`` cannot skip conflicts itself; staging keeps its speed for the bulk transfer and leaves
the conflict handling to one ``INSERT ... SELECT``.
"""

from __future__ import annotations

from psycopg import sql

from emily.memory.migrations import KEY_COLUMN, KEY_FUNCTION, TABLE

STAGING = "emily_staging"
COPY_TYPES = ["int4", "int8", "timestamptz", "text", "vector", None, "jsonb"]
_COLUMNS = ["ord", "id", "occurred_at", "content", "affect", "embedding", "context"]


def _staging() -> sql.Composed:
    return sql.SQL("pg_temp.{}").format(sql.Identifier(STAGING))


def create_staging(embedding_type: sql.Composable) -> sql.Composed:
    """Once per pooled connection; ``ON COMMIT DELETE ROWS`` empties it after every batch."""
    return sql.SQL(
        "CREATE TEMP TABLE IF NOT EXISTS {staging} ("
        " ord int4 NOT NULL, id int8 NOT NULL, occurred_at timestamptz NOT NULL,"
        " content text NOT NULL, affect vector(3) NOT NULL, embedding {embedding},"
        " context jsonb NOT NULL) ON COMMIT DELETE ROWS"
    ).format(staging=_staging(), embedding=embedding_type)


def copy_types(storage: str) -> list[str]:
    return [storage if t is None else t for t in COPY_TYPES]


def reserve_ids() -> sql.Composed:
    return sql.SQL(
        "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)"
    ).format()


def copy_into_staging() -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        _staging(), sql.SQL(", ").join(map(sql.Identifier, _COLUMNS))
    )


def insert_new() -> sql.Composed:
    """Insert what is not stored yet, in file order; returns the ids actually inserted."""
    cols = sql.SQL(", ").join(map(sql.Identifier, _COLUMNS[1:]))
    return sql.SQL(
        "INSERT INTO {table} ({cols}) SELECT {cols} FROM {staging} ORDER BY ord"
        " ON CONFLICT ({key}, occurred_at) DO NOTHING RETURNING id"
    ).format(
        table=sql.Identifier(TABLE), cols=cols, staging=_staging(), key=sql.Identifier(KEY_COLUMN)
    )


def stored_ids() -> sql.Composed:
    """For each staged row, the id of the stored episode with its key (new or older)."""
    return sql.SQL(
        "SELECT s.ord, m.id FROM {staging} s JOIN {table} m"
        " ON m.occurred_at = s.occurred_at"
        " AND m.{key} = public.{fn}(s.content, s.occurred_at, s.context)"
    ).format(
        staging=_staging(),
        table=sql.Identifier(TABLE),
        key=sql.Identifier(KEY_COLUMN),
        fn=sql.Identifier(KEY_FUNCTION),
    )
