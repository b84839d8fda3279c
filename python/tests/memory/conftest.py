"""Memory fixtures: the session stack's database, migrated once, and a store on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from emily.config import Settings
from emily.locator import Endpoints
from emily.memory.migrations import migrate
from emily.memory.store import MemoryStore
from emily.stack.manager import Stack

# Tests keep their episodes in the recent past: the retention test drops only very old months.
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="session")
def migrated(stack: Stack, settings: Settings) -> Settings:
    migrate(settings)
    return settings


@pytest.fixture(scope="session")
def store(migrated: Settings) -> Iterator[MemoryStore]:
    with MemoryStore.open(migrated) as opened:
        yield opened


def widened(settings: Settings, past_days: int) -> Settings:
    """The same settings with an accepted window reaching ``past_days`` back (tests that need
    very old months: the default window refuses them)."""
    database = settings.database.model_copy(update={"occurred_at_past_days": past_days})
    return settings.model_copy(update={"database": database})


def unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    matrix = rng.standard_normal((n, dim)).astype(np.float32)
    norms: np.ndarray = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: np.ndarray = matrix / norms
    return unit


def make_episodes(
    rng: np.random.Generator,
    n: int,
    dim: int,
    *,
    tag: str | None = None,
    start: datetime | None = None,
    **context: Any,
) -> list[dict[str, Any]]:
    """Random episodes with explicit unit embeddings, tagged so a test can find its own rows."""
    tag = tag or uuid.uuid4().hex
    start = start or NOW - timedelta(days=20)
    vectors = unit_vectors(rng, n, dim)
    affects = rng.uniform(-1, 1, size=(n, 3))
    return [
        {
            "content": f"episode {i} of {tag}",
            "occurred_at": start + timedelta(hours=i),
            "affect": [float(x) for x in affects[i]],
            "context": {"tag": tag, "i": i, **context},
            "embedding": [float(x) for x in vectors[i]],
        }
        for i in range(n)
    ]


def in_database(dsn: str, dbname: str) -> str:
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo("", **params)


@contextmanager
def fresh_database(settings: Settings, endpoints: Endpoints) -> Iterator[Settings]:
    """An empty database on the session's server, and settings (external-DSN mode, as a
    deployment would configure them) that point at it; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(endpoints.postgres_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database = settings.database.model_copy(
        update={
            "dsn": SecretStr(in_database(endpoints.postgres_dsn, name)),
            "admin_dsn": SecretStr(in_database(endpoints.postgres_admin_dsn, name)),
        }
    )
    try:
        yield settings.model_copy(update={"database": database})
    finally:
        with psycopg.connect(endpoints.postgres_admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def cli_env(settings: Settings) -> dict[str, str]:
    """Environment that points `emily` at ``settings``' database (for CliRunner.invoke)."""
    db = settings.database
    assert db.dsn is not None and db.admin_dsn is not None
    return {
        "EMILY_DATABASE__DSN": db.dsn.get_secret_value(),
        "EMILY_DATABASE__ADMIN_DSN": db.admin_dsn.get_secret_value(),
    }
