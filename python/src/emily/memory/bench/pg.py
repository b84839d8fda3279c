"""pgvector engines: a scratch database, binary COPY load, HNSW build and a prepared-statement
client that sends pre-encoded vectors over the binary protocol."""

from __future__ import annotations

import secrets
import struct
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import psycopg
from pgvector import HalfVector, Vector
from pgvector.psycopg import register_vector
from psycopg import pq, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from emily.errors import StackError
from emily.memory.bench.models import Metric

Storage = Literal["halfvec", "vector"]
TABLE = "items"
SETTINGS_SHOWN = (
    "server_version",
    "shared_buffers",
    "effective_cache_size",
    "maintenance_work_mem",
    "max_parallel_maintenance_workers",
    "max_parallel_workers_per_gather",
    "work_mem",
    "jit",
    "shared_preload_libraries",
)
_ID = struct.Struct(">i")
_STATEMENT = b"emily_bench"


@dataclass(frozen=True)
class Layout:
    """How vectors are stored, indexed and compared in one pgvector engine."""

    storage: Storage
    metric: Metric
    # Inner product on unit vectors ranks like cosine and skips two norm computations.
    cosine_as_ip: bool
    binary: bool = False

    @property
    def operator(self) -> str:
        if self.metric == "l2":
            return "<->"
        return "<#>" if self.cosine_as_ip else "<=>"

    @property
    def opclass(self) -> str:
        if self.binary:
            return "bit_hamming_ops"
        kind = "l2" if self.metric == "l2" else ("ip" if self.cosine_as_ip else "cosine")
        return f"{self.storage}_{kind}_ops"

    @property
    def distance(self) -> str:
        return f"{self.operator} on {self.storage}" + (" (binary_quantize, hamming)" * self.binary)


def database_dsn(dsn: str, dbname: str) -> str:
    return make_conninfo(dsn, dbname=dbname)


@contextmanager
def scratch_database(admin_dsn: str, label: str) -> Iterator[str]:
    """A throw-away database on the server behind ``admin_dsn``; dropped on exit."""
    name = f"emily_bench_{label}_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        host = conninfo_to_dict(admin_dsn).get("host")
        raise StackError(f"cannot create a scratch database on {host}: {exc}") from exc
    try:
        dsn = database_dsn(admin_dsn, name)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield dsn
    finally:
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def try_extension(dsn: str, name: str) -> bool:
    """Create an optional extension (pg_prewarm, pg_stat_statements); False where unavailable."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name)))
        except psycopg.Error:
            return False
        return True


def server_settings(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
            (list(SETTINGS_SHOWN),),
        ).fetchall()
        version = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
    shown = {str(name): str(value) for name, value in rows}
    if version is not None:
        shown["pgvector"] = str(version[0])
    return shown


def load(dsn: str, base: np.ndarray, storage: Storage) -> float:
    """Create the table and fill it with one binary COPY; return the seconds it took."""
    dim = base.shape[1]
    wrap = HalfVector if storage == "halfvec" else Vector
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        conn.execute(
            sql.SQL("CREATE TABLE {} (id int4 PRIMARY KEY, embedding {}({}))").format(
                sql.Identifier(TABLE), sql.SQL(storage), sql.Literal(dim)
            )
        )
        copy_sql = sql.SQL("COPY {} (id, embedding) FROM STDIN WITH (FORMAT BINARY)").format(
            sql.Identifier(TABLE)
        )
        with conn.cursor().copy(copy_sql) as copy:
            copy.set_types(["int4", storage])
            for row, vector in enumerate(base):
                copy.write_row((row, wrap(vector)))
        conn.commit()
        # Visibility map and statistics as a long-lived table would have them.
        conn.autocommit = True
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(TABLE)))
    return time.perf_counter() - started


def build_index(
    dsn: str,
    layout: Layout,
    dim: int,
    m: int,
    ef_construction: int,
    maintenance_work_mem: str | None = None,
) -> tuple[float, int]:
    """Build the HNSW index; return (seconds, bytes)."""
    column: sql.Composable = sql.Identifier("embedding")
    if layout.binary:
        column = sql.SQL("(binary_quantize(embedding)::bit({}))").format(sql.Literal(dim))
    statement = sql.SQL(
        "CREATE INDEX bench_hnsw ON {} USING hnsw ({} {}) WITH (m = {}, ef_construction = {})"
    ).format(
        sql.Identifier(TABLE),
        column,
        sql.SQL(layout.opclass),
        sql.Literal(m),
        sql.Literal(ef_construction),
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        if maintenance_work_mem is not None:
            conn.execute(
                "SELECT set_config('maintenance_work_mem', %s, false)", (maintenance_work_mem,)
            )
        started = time.perf_counter()
        conn.execute(statement)
        seconds = time.perf_counter() - started
        size = conn.execute("SELECT pg_relation_size('bench_hnsw')").fetchone()
    return seconds, int(size[0]) if size else 0


def relation_bytes(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_table_size(%s::regclass)", (TABLE,)).fetchone()
    return int(row[0]) if row else 0


def prewarm(dsn: str) -> None:
    """Load heap and index into shared_buffers (pg_prewarm), as autoprewarm does at restart."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_prewarm(%s::regclass)", (TABLE,))
        conn.execute("SELECT pg_prewarm('bench_hnsw')")


def query_sql(layout: Layout, dim: int, k: int, rerank: int | None) -> sql.Composed:
    """The search statement, with the query vector as $1."""
    if not layout.binary:
        return sql.SQL("SELECT id FROM {} ORDER BY embedding {} $1 LIMIT {}").format(
            sql.Identifier(TABLE), sql.SQL(layout.operator), sql.Literal(k)
        )
    hamming = sql.SQL(
        "SELECT id, embedding FROM {} ORDER BY binary_quantize(embedding)::bit({}) "
        "<~> binary_quantize($1)::bit({}) LIMIT {}"
    ).format(
        sql.Identifier(TABLE),
        sql.Literal(dim),
        sql.Literal(dim),
        sql.Literal(rerank if rerank is not None else k),
    )
    if rerank is None:
        return sql.SQL("SELECT id FROM ({}) AS candidates").format(hamming)
    return sql.SQL("SELECT id FROM ({}) AS candidates ORDER BY embedding {} $1 LIMIT {}").format(
        hamming, sql.SQL(layout.operator), sql.Literal(k)
    )


def render(dsn: str, statement: sql.Composed) -> bytes:
    with psycopg.connect(dsn) as conn:
        return statement.as_bytes(conn)


def encode(queries: np.ndarray, storage: Storage) -> list[bytes]:
    """Queries in pgvector's binary wire format, encoded once before any timing."""
    wrap = HalfVector if storage == "halfvec" else Vector
    return [bytes(wrap(vector).to_binary()) for vector in queries]


def type_oid(dsn: str, storage: Storage) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT to_regtype(%s)::oid", (storage,)).fetchone()
    return int(row[0]) if row else 0


class PgClient:
    """One connection running the prepared search through libpq (binary in, binary out)."""

    def __init__(
        self,
        dsn: str,
        statement: bytes,
        param_oid: int,
        encoded: Sequence[bytes],
        session: dict[str, str],
    ) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        for name, value in session.items():
            self.conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        self.pgconn = self.conn.pgconn
        result = self.pgconn.prepare(_STATEMENT, statement, [param_oid])
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise StackError(f"prepare failed: {self.pgconn.get_error_message()}")
        self.encoded = encoded

    def search(self, query: int) -> list[int]:
        result = self.pgconn.exec_prepared(
            _STATEMENT, [self.encoded[query]], param_formats=[1], result_format=1
        )
        if result.status != pq.ExecStatus.TUPLES_OK:
            raise StackError(f"search failed: {self.pgconn.get_error_message()}")
        return [
            _ID.unpack(result.get_value(row, 0) or b"\0\0\0\0")[0] for row in range(result.ntuples)
        ]

    def close(self) -> None:
        self.conn.close()


def explain(
    dsn: str, statement: sql.Composed, encoded: bytes, param_oid: int, session: dict[str, str]
) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of one search, with the same session settings."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, value in session.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        text = sql.SQL("EXPLAIN (ANALYZE, BUFFERS) {}").format(statement).as_bytes(conn)
        result = conn.pgconn.exec_params(text, [encoded], [param_oid], param_formats=[1])
        if result.status != pq.ExecStatus.TUPLES_OK:
            raise StackError(f"explain failed: {conn.pgconn.get_error_message()}")
        return "\n".join(
            (result.get_value(row, 0) or b"").decode() for row in range(result.ntuples)
        )


def statement_stats(dsn: str) -> tuple[int, float] | None:
    """(calls, total ms) of the benchmark statement in this database, from pg_stat_statements."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            row = conn.execute(
                "SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0) "
                "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                "WHERE d.datname = current_database() AND s.query LIKE 'SELECT id FROM%%'"
            ).fetchone()
        except psycopg.Error:
            return None
    return (int(row[0]), float(row[1])) if row else None
