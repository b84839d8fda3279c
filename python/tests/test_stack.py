from __future__ import annotations

import json
import socket
from pathlib import Path

import psycopg
import pytest
import redis
from typer.testing import CliRunner

from emily.cli import app
from emily.config import Settings
from emily.errors import BinaryNotFoundError, PortInUseError, StackNotRunningError
from emily.locator import Endpoints, resolve_endpoints
from emily.stack.manager import Stack
from tests.conftest import make_settings


def test_postgres_has_pgvector_and_preloads(endpoints: Endpoints) -> None:
    with psycopg.connect(endpoints.postgres_admin_dsn) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        vec = conn.execute("SELECT extversion FROM pg_extension WHERE extname='vector'").fetchone()
    assert version is not None and version[0].startswith("18")
    assert preload is not None and "pg_stat_statements" in preload[0]
    assert vec is not None and vec[0] >= "0.8"


def test_redis_answers_with_password(endpoints: Endpoints) -> None:
    assert endpoints.redis_url is not None
    client = redis.Redis.from_url(endpoints.redis_url)
    client.set("emily:test", "1")
    assert client.get("emily:test") == b"1"
    anonymous = redis.Redis(host="127.0.0.1", port=client.connection_pool.connection_kwargs["port"])
    with pytest.raises(redis.AuthenticationError):
        anonymous.get("emily:test")


def test_up_is_idempotent(stack: Stack, settings: Settings) -> None:
    before = {name: r.pid for name, r in stack.state_dir.read().services.items()}
    stack.up(["postgres", "redis"])
    after = {name: r.pid for name, r in stack.state_dir.read().services.items()}
    assert before == after


def test_status_json_cli(stack: Stack, settings: Settings) -> None:
    result = CliRunner().invoke(app, ["--state-dir", str(settings.state_dir), "status", "--json"])
    payload = json.loads(result.stdout)
    by_name = {s["name"]: s for s in payload["services"]}
    assert by_name["postgres"]["healthy"] and by_name["redis"]["healthy"]
    assert result.exit_code == 0, "services never started must not fail `status`"


def test_restart_keeps_data(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "state")
    stack = Stack(settings)
    stack.up(["postgres"])
    try:
        dsn = resolve_endpoints(settings).postgres_admin_dsn
        with psycopg.connect(dsn) as conn:
            conn.execute("CREATE TABLE kept (x int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        stack.down()
        assert not stack.status()[0].running
        stack.up(["postgres"])
        with psycopg.connect(resolve_endpoints(settings).postgres_admin_dsn) as conn:
            row = conn.execute("SELECT x FROM kept").fetchone()
        assert row == (42,)
    finally:
        stack.down()


def test_port_taken_is_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        settings = make_settings(tmp_path / "state", stack={"redis_port": port})
        with pytest.raises(PortInUseError, match=str(port)):
            Stack(settings).up(["redis"])


def test_missing_binary_is_clear_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "state", stack={"postgres_bin_dir": str(tmp_path)})
    with pytest.raises(BinaryNotFoundError, match="initdb"):
        Stack(settings).up(["postgres"])
    result = CliRunner().invoke(
        app,
        ["--state-dir", str(tmp_path / "state"), "up", "-s", "redis", "-s", "nope"],
    )
    assert result.exit_code == 1
    assert "unknown service" in result.stderr


def test_not_running_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(StackNotRunningError, match="emily up"):
        resolve_endpoints(make_settings(tmp_path / "empty"))


def test_configured_dsn_bypasses_local_stack(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "empty", database={"dsn": "postgresql://a@b/c"}, redis={"url": "redis://x"}
    )
    endpoints = resolve_endpoints(settings)
    assert endpoints.postgres_dsn == "postgresql://a@b/c"
    assert endpoints.postgres_admin_dsn == "postgresql://a@b/c"
    assert endpoints.redis_url == "redis://x"
