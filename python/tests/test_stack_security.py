"""What the local stack writes is private: other local users can read no secret, reach no
server with a password they could find, and no password is stored in clear in PostgreSQL's
statistics. Checked as a real other user (``nobody``) when the suite runs as root, and by file
modes otherwise."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import psycopg
import pytest

from emily.config import Settings
from emily.locator import Endpoints
from emily.stack.manager import Stack

AS_ROOT = os.geteuid() == 0


def _private_paths(state_dir: Path) -> list[Path]:
    candidates = [
        state_dir / "stack.json",
        state_dir / "secrets",
        *sorted((state_dir / "secrets").iterdir()),
        state_dir / "redis",
        state_dir / "redis" / "redis.conf",
        state_dir / "postgres",
        state_dir / "postgres" / "postgres.log",
    ]
    return [p for p in candidates if p.exists()]


def _readable_by_nobody(path: Path) -> bool:
    tool = ["ls", str(path)] if path.is_dir() else ["head", "-c", "1", str(path)]
    done = subprocess.run(["runuser", "-u", "nobody", "--", *tool], capture_output=True)
    return done.returncode == 0


def test_state_files_are_private(stack: Stack, settings: Settings) -> None:
    paths = _private_paths(settings.state_dir)
    assert settings.state_dir / "stack.json" in paths and len(paths) >= 6
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o007 == 0, f"{path} is open to other users ({oct(mode)})"
        if path.is_file():
            assert mode & 0o070 == 0, f"{path} is open to its group ({oct(mode)})"
    assert stat.S_IMODE(settings.state_dir.stat().st_mode) & 0o007 == 0
    if AS_ROOT:
        for path in paths:
            assert not _readable_by_nobody(path), f"nobody can read {path}"


def test_no_parent_directory_is_opened_to_everyone(stack: Stack, settings: Settings) -> None:
    # make_traversable used to add o+x to every parent; the ACL names only the service user.
    # pytest creates its temporary directories 0700, so none of them may allow others in.
    for parent in [settings.state_dir, *settings.state_dir.parents]:
        if parent == Path(os.environ.get("TMPDIR", "/tmp")) or parent == Path("/"):
            break
        mode = stat.S_IMODE(parent.stat().st_mode)
        assert not mode & stat.S_IXOTH, f"{parent} lets other users in ({oct(mode)})"
    if AS_ROOT:
        acl = subprocess.run(
            ["getfacl", "-p", str(settings.state_dir)], capture_output=True, text=True, check=True
        ).stdout
        named = [line for line in acl.splitlines() if line.startswith("user:") and "::" not in line]
        assert named == [line for line in named if line.startswith("user:emily:")]
        assert named, "the PostgreSQL service user needs its ACL entry to reach its data"


def test_no_clear_text_password_in_pg_stat_statements(
    endpoints: Endpoints, settings: Settings
) -> None:
    from emily.memory.migrations import migrate

    migrate(settings)  # (re)sets the application role's password
    secrets_dir = settings.state_dir / "secrets"
    passwords = [p.read_text().strip() for p in secrets_dir.iterdir()]
    with psycopg.connect(endpoints.postgres_admin_dsn) as conn:
        statements = [r[0] for r in conn.execute("SELECT query FROM pg_stat_statements")]
        roles = [
            r[0]
            for r in conn.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                (settings.database.app_role,),
            )
        ]
    assert any("ROLE" in s.upper() for s in statements), "role statements are tracked"
    for password in passwords:
        assert not any(password in s for s in statements)
    assert roles and roles[0].startswith("SCRAM-SHA-256$")


@pytest.mark.parametrize("content", ["", "[]", '{"services": {"postgres": {"na'])
def test_corrupt_state_file_is_one_line_and_up_rebuilds_it(tmp_path: Path, content: str) -> None:
    from typer.testing import CliRunner

    from emily.cli.app import app
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "state")
    stack = Stack(settings)
    record = stack.up(["redis"]).services["redis"]
    try:
        (settings.state_dir / "stack.json").write_text(content)
        runner = CliRunner()
        status = runner.invoke(app, ["status", "--state-dir", str(settings.state_dir)])
        assert status.exit_code == 1
        lines = status.stderr.strip().splitlines()
        assert len(lines) == 1 and "corrupt" in lines[0] and "emily up" in lines[0]
        up = runner.invoke(app, ["up", "-s", "redis", "--state-dir", str(settings.state_dir)])
        assert up.exit_code == 0, up.stderr
        assert "rebuilt" in up.stderr
        rebuilt = Stack(settings).record("redis")
        assert rebuilt is not None and rebuilt.pid == record.pid and rebuilt.port == record.port
        assert (settings.state_dir / "stack.json.corrupt").read_text() == content
    finally:
        Stack(settings).down(["redis"])


def test_explicit_port_is_warned_when_server_runs_elsewhere(tmp_path: Path) -> None:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "state")
    first = Stack(settings)
    port = first.up(["redis"]).services["redis"].port
    try:
        assert port is not None
        wanted = port + 1 if port < 65535 else port - 1
        moved = make_settings(tmp_path / "state", stack={"redis_port": wanted})
        again = Stack(moved)
        kept = again.up(["redis"]).services["redis"]
        assert kept.port == port
        assert any(str(wanted) in w and "takes effect after" in w for w in again.warnings)
    finally:
        first.down(["redis"])
