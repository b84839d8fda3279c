"""Keeping the episodic memory healthy: VACUUM ANALYZE, HNSW rebuilds, sizes and bloat,
partition listing and retention. Runs with the owner (admin) DSN: these are owner operations the
least-privilege app role cannot do."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg import sql
from pydantic import BaseModel

from emily.config import Settings
from emily.errors import ConfigError
from emily.locator import postgres_admin_dsn
from emily.memory.connect import connect
from emily.memory.migrations import PARTITION_FUNCTION, TABLE, partitions_ahead, require_schema
from emily.telemetry.logs import get_logger

log = get_logger("memory.maintenance")

_PARTITION_NAME = re.compile(rf"^{TABLE}_y(\d{{4}})m(\d{{2}})$")


class PartitionStats(BaseModel):
    name: str
    range: str
    month: date | None
    rows: int
    table_bytes: int
    index_bytes: int
    dead_rows: int


class MemoryStats(BaseModel):
    rows: int
    partitions: list[PartitionStats]
    table_bytes: int
    index_bytes: int
    dead_rows: int
    bloat_ratio: float
    """Dead / (live + dead) tuples as counted by the statistics collector: a cheap estimate of
    what VACUUM would reclaim."""


def _connect(settings: Settings) -> psycopg.Connection[Any]:
    """An owner connection to a migrated database (else a one-line error saying what to run)."""
    # autocommit: VACUUM, REINDEX CONCURRENTLY and DETACH CONCURRENTLY refuse transactions.
    conn = connect(postgres_admin_dsn(settings), autocommit=True)
    try:
        require_schema(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def partition_month(name: str) -> date | None:
    match = _PARTITION_NAME.match(name)
    return date(int(match.group(1)), int(match.group(2)), 1) if match else None


def stats(settings: Settings) -> MemoryStats:
    with _connect(settings) as conn:
        counts = {
            str(r[0]): int(r[1])
            for r in conn.execute(
                sql.SQL("SELECT tableoid::regclass::text, count(*) FROM {} GROUP BY 1").format(
                    sql.Identifier(TABLE)
                )
            )
        }
        rows = conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid),"
            " pg_table_size(c.oid), pg_indexes_size(c.oid), COALESCE(s.n_dead_tup, 0),"
            " COALESCE(s.n_live_tup, 0)"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid"
            " WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            (f"public.{TABLE}",),
        ).fetchall()
    partitions = [
        PartitionStats(
            name=name,
            range=bound,
            month=partition_month(name),
            rows=counts.get(name, 0),
            table_bytes=table_bytes,
            index_bytes=index_bytes,
            dead_rows=dead,
        )
        for name, bound, table_bytes, index_bytes, dead, _ in rows
    ]
    live = sum(r[5] for r in rows)
    dead_total = sum(p.dead_rows for p in partitions)
    return MemoryStats(
        rows=sum(counts.values()),
        partitions=partitions,
        table_bytes=sum(p.table_bytes for p in partitions),
        index_bytes=sum(p.index_bytes for p in partitions),
        dead_rows=dead_total,
        bloat_ratio=dead_total / (live + dead_total) if live + dead_total else 0.0,
    )


def vacuum_analyze(settings: Settings) -> None:
    with _connect(settings) as conn:
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(TABLE)))
    log.info("vacuum_analyze_done")


def hnsw_indexes(settings: Settings) -> list[str]:
    with _connect(settings) as conn:
        return [
            str(r[0])
            for r in conn.execute(
                "SELECT ic.relname FROM pg_inherits i"
                " JOIN pg_index x ON x.indrelid = i.inhrelid"
                " JOIN pg_class ic ON ic.oid = x.indexrelid"
                " JOIN pg_am am ON am.oid = ic.relam"
                " WHERE i.inhparent = %s::regclass AND am.amname = 'hnsw' ORDER BY 1",
                (f"public.{TABLE}",),
            )
        ]


def reindex(settings: Settings) -> list[str]:
    """Rebuild every HNSW index without blocking reads or writes (REINDEX CONCURRENTLY): graphs
    degrade with many deletes, and a rebuild also picks up changed build parameters."""
    names = hnsw_indexes(settings)
    with _connect(settings) as conn:
        for name in names:
            conn.execute(
                sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(sql.Identifier("public", name))
            )
            log.info("reindexed", index=name)
    return names


def ensure_partitions_ahead(settings: Settings, ahead: int | None = None) -> list[str]:
    months = partitions_ahead(settings, ahead)
    with _connect(settings) as conn:
        return [
            str(r[0])
            for r in conn.execute(
                sql.SQL("SELECT public.{}(m) FROM unnest(%s::date[]) AS m").format(
                    sql.Identifier(PARTITION_FUNCTION)
                ),
                (months,),
            )
        ]


def retention_cutoff(months: int, today: date | None = None) -> date:
    """First day of the oldest month kept: partitions ending on or before it are dropped."""
    today = today or datetime.now(UTC).date()
    index = today.year * 12 + (today.month - 1) - months
    return date(index // 12, index % 12 + 1, 1)


def apply_retention(settings: Settings, months: int | None = None) -> list[str]:
    """Detach and drop the monthly partitions wholly older than ``months`` months."""
    keep = months if months is not None else settings.database.retention_months
    if keep is None:
        return []
    if keep < 1:
        raise ConfigError("retention must keep at least 1 month", field="retention_months")
    cutoff = retention_cutoff(keep)
    dropped = []
    for partition in stats(settings).partitions:
        if partition.month is None or partition.month >= cutoff:
            continue
        with _connect(settings) as conn:
            # CONCURRENTLY: searches and inserts on the other partitions go on meanwhile.
            conn.execute(
                sql.SQL("ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY").format(
                    sql.Identifier(TABLE), sql.Identifier("public", partition.name)
                )
            )
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("public", partition.name)))
        log.info("partition_dropped", partition=partition.name, rows=partition.rows)
        dropped.append(partition.name)
    return dropped
