"""Durable threads: LangGraph's ``AsyncPostgresSaver`` in its own schema of our PostgreSQL.

The saver runs on a connection *pool* that checks each connection before handing it out, so a
restart of PostgreSQL costs the requests that were in flight at that moment, not every request
after it (one plain connection stays closed for good once its server went away).
"""

from __future__ import annotations

from typing import Any

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from emily.config import Settings
from emily.errors import StackError
from emily.locator import postgres_admin_dsn

CheckpointPool = AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def open_checkpointer(
    settings: Settings, *, max_size: int
) -> tuple[AsyncPostgresSaver, CheckpointPool]:
    """Create the schema and tables if needed; the caller closes the returned pool.

    The tables live in ``agents.checkpoint_schema`` so they never mix with the episodic memory
    schema, and the owner role is used because ``setup()`` creates and migrates tables.
    """
    dsn = postgres_admin_dsn(settings)
    cfg = settings.agents
    schema = cfg.checkpoint_schema
    timeout = cfg.db_connect_timeout_s
    try:
        async with await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, connect_timeout=timeout
        ) as admin:
            await admin.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
            )
    except psycopg.OperationalError as exc:
        raise StackError(
            f"cannot connect to PostgreSQL for checkpoints: {_first_line(exc)}",
            hint="is the stack up (`emily up`)?",
        ) from exc
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "prepare_threshold": 0,  # no server-side prepared statements to lose on a reconnect
        "row_factory": dict_row,
        "connect_timeout": timeout,
        "options": f"-c search_path={schema}",
    }
    pool: CheckpointPool = AsyncConnectionPool(
        dsn,
        min_size=1,
        max_size=max_size,
        kwargs=kwargs,
        # A connection the server closed (restart, idle kill) is found and replaced here,
        # before a checkpoint read or write would fail on it.
        check=AsyncConnectionPool.check_connection,
        # A request waits this long for a connection, then fails fast (503) instead of
        # hanging for psycopg_pool's default 30 s while the server is away.
        timeout=float(timeout),
        reconnect_timeout=float(cfg.db_reconnect_timeout_s),
        open=False,
        name="emily-checkpoints",
    )
    try:
        await pool.open(wait=True, timeout=float(timeout) + 2)
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
    except (PoolTimeout, psycopg.OperationalError) as exc:
        await pool.close()
        raise StackError(
            f"cannot open the checkpoint pool: {_first_line(exc)}",
            hint="is the stack up (`emily up`)?",
        ) from exc
    except BaseException:
        await pool.close()
        raise
    return saver, pool
