"""Durable threads: LangGraph's ``AsyncPostgresSaver`` in its own schema of our PostgreSQL."""

from __future__ import annotations

from typing import Any

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import sql
from psycopg.rows import dict_row

from emily.config import Settings
from emily.errors import StackError
from emily.locator import postgres_admin_dsn


async def open_checkpointer(
    settings: Settings,
) -> tuple[AsyncPostgresSaver, psycopg.AsyncConnection[dict[str, Any]]]:
    """Create the schema and tables if needed; the caller closes the returned connection.

    The tables live in ``agents.checkpoint_schema`` so they never mix with the episodic memory
    schema, and the owner role is used because ``setup()`` creates and migrates tables.
    """
    dsn = postgres_admin_dsn(settings)
    schema = settings.agents.checkpoint_schema
    timeout = settings.agents.db_connect_timeout_s
    try:
        async with await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, connect_timeout=timeout
        ) as admin:
            await admin.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
            )
        conn = await psycopg.AsyncConnection.connect(
            dsn,
            autocommit=True,
            prepare_threshold=0,
            row_factory=dict_row,
            connect_timeout=timeout,
            options=f"-c search_path={schema}",
        )
    except psycopg.OperationalError as exc:
        raise StackError(
            f"cannot connect to PostgreSQL for checkpoints: {str(exc).strip().splitlines()[0]}",
            hint="is the stack up (`emily up`)?",
        ) from exc
    saver = AsyncPostgresSaver(conn)  # type: ignore[arg-type]
    await saver.setup()
    return saver, conn
