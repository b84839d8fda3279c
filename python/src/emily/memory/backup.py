"""``pg_dump -Fc`` backups and ``pg_restore`` with the stack's PostgreSQL tools.

The password travels in ``PGPASSWORD`` rather than on the command line, where ``ps`` would show
it to every local user.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from emily.config import Settings
from emily.errors import EmilyError, StackError
from emily.locator import postgres_admin_dsn
from emily.stack.postgres import postgres_bin_dir
from emily.telemetry.logs import get_logger

log = get_logger("memory.backup")


class BackupError(EmilyError):
    """A backup or restore failed."""


def _tool(settings: Settings, name: str) -> str:
    path = postgres_bin_dir(settings) / name
    if not path.is_file():
        raise StackError(f"{name} not found in {path.parent}")
    return str(path)


def _split(dsn: str, dbname: str | None = None) -> tuple[str, dict[str, str]]:
    """A password-free conninfo (optionally for another database) and the env carrying it."""
    params = conninfo_to_dict(dsn)
    password = params.pop("password", None)
    if dbname is not None:
        params["dbname"] = dbname
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        subprocess.run(args, env=env, check=True, capture_output=True, text=True, timeout=3600)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip()[-2000:]
        raise BackupError(f"{what} failed: {tail}") from exc


def backup(settings: Settings, path: Path) -> Path:
    """Write the whole configured database to ``path`` in pg_dump's custom format."""
    path = path.expanduser().resolve()
    if path.is_dir():
        raise BackupError(f"{path} is a directory", field="path")
    path.parent.mkdir(parents=True, exist_ok=True)
    conninfo, env = _split(postgres_admin_dsn(settings))
    _run([_tool(settings, "pg_dump"), "-Fc", "-f", str(path), "-d", conninfo], env, "pg_dump")
    log.info("backup_written", path=str(path), bytes=path.stat().st_size)
    return path


def database_name(settings: Settings) -> str:
    return str(conninfo_to_dict(postgres_admin_dsn(settings)).get("dbname", ""))


def restore(settings: Settings, path: Path, into: str | None = None) -> str:
    """Restore a backup. ``into``: a new database created for it (it must not exist yet);
    default: the configured database, whose objects are replaced (``--clean``)."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise BackupError(f"{path} does not exist", field="path")
    admin = postgres_admin_dsn(settings)
    target = into or database_name(settings)
    args = [_tool(settings, "pg_restore"), "--exit-on-error", "--single-transaction"]
    if into is not None:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (into,)
            ).fetchone()
            if exists:
                raise BackupError(f"database {into} already exists", field="into")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(into)))
    else:
        args += ["--clean", "--if-exists"]
    conninfo, env = _split(admin, target)
    _run([*args, "-d", conninfo, str(path)], env, "pg_restore")
    log.info("backup_restored", path=str(path), database=target)
    return target
