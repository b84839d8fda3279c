"""Connecting to the memory database: an unreachable server is a one-line ``StackError`` that
says what to do, never a driver traceback."""

from __future__ import annotations

from typing import Any

import psycopg

from emily.errors import StackError


def unreachable(exc: psycopg.Error) -> StackError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return StackError(
        f"cannot connect to PostgreSQL: {first}", hint="is the stack up (`emily up`)?"
    )


def connect(dsn: str, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise unreachable(exc) from exc
