"""``pg_dump -Fc`` backups and atomic restores with the stack's PostgreSQL tools.

A restore never works on the live database: it restores into a fresh scratch database and
only when that succeeded swaps it in by renaming, in one transaction. A failed restore
(truncated file, wrong archive, full disk) therefore leaves the live database exactly as it
was, and a failed ``--into`` leaves no database behind. (``pg_restore --clean`` on the live
database cannot work for a partitioned schema anyway: it fails with ``cannot drop inherited
constraint``.) Other databases of the server (MLflow's) are never touched; the agents'
checkpoint schema lives in the memory database, so it is backed up and restored with it.

The swap needs the live database to itself: new connections are refused for the moment of
the rename and existing ones are terminated; pooled clients (the memory store, the agents'
pools) reconnect on their next request. Backup files are written 0600 (they hold every
memory) and appear atomically: a failed backup never clobbers an earlier good file.

The password travels in ``PGPASSWORD`` rather than on the command line, where ``ps`` would show
it to every local user.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from emily.config import Settings
from emily.errors import EmilyError, StackError
from emily.jsonio import text_problem
from emily.locator import postgres_admin_dsn
from emily.memory.connect import connect
from emily.stack.postgres import postgres_bin_dir
from emily.telemetry.logs import get_logger

log = get_logger("memory.backup")

BACKUP_MODE = 0o600
SWAP_ATTEMPTS = 20
_PRIVILEGES = {"CONNECT", "TEMPORARY", "CREATE"}


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


def _in_database(dsn: str, dbname: str) -> str:
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo("", **params)


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        subprocess.run(args, env=env, check=True, capture_output=True, text=True, timeout=3600)
    except subprocess.CalledProcessError as exc:
        lines = [line.strip() for line in (exc.stderr or exc.stdout or "").splitlines()]
        detail = "; ".join(line for line in lines if line)[-600:] or f"exit code {exc.returncode}"
        raise BackupError(f"{what} failed: {detail}") from exc


def backup(settings: Settings, path: Path) -> Path:
    """Write the whole configured database to ``path`` (pg_dump custom format, mode 0600)."""
    path = path.expanduser().resolve()
    if path.is_dir():
        raise BackupError(f"{path} is a directory", field="path")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    # Created 0600 before pg_dump writes a byte (pg_dump reopens it and keeps the mode).
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, BACKUP_MODE))
    try:
        conninfo, env = _split(postgres_admin_dsn(settings))
        _run(
            [_tool(settings, "pg_dump"), "-Fc", "-f", str(partial), "-d", conninfo], env, "pg_dump"
        )
        partial.chmod(BACKUP_MODE)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    log.info("backup_written", path=str(path), bytes=path.stat().st_size)
    return path


def database_name(settings: Settings) -> str:
    return str(conninfo_to_dict(postgres_admin_dsn(settings)).get("dbname", ""))


def _check_name(name: str, field: str) -> None:
    problem = text_problem(name)
    if problem or not name or len(name.encode()) > 63:
        raise BackupError(
            problem or "must be a database name of 1 to 63 bytes", field=field, hint=None
        )


@dataclass(frozen=True)
class _Database:
    owner: str
    encoding: str
    collate: str
    ctype: str
    provider: str
    locale: str | None
    grants: list[tuple[str | None, str]]  # (role or None for PUBLIC, privilege); [] = default


def _describe(conn: psycopg.Connection[Any], name: str) -> _Database | None:
    row = conn.execute(
        "SELECT r.rolname, pg_encoding_to_char(d.encoding), to_jsonb(d), d.datacl IS NULL"
        " FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = %s",
        (name,),
    ).fetchone()
    if row is None:
        return None
    owner, encoding, info, default_acl = row
    grants: list[tuple[str | None, str]] = []
    if not default_acl:
        grants = [
            (role, privilege)
            for role, privilege in conn.execute(
                "SELECT r.rolname, a.privilege_type FROM pg_database d"
                " CROSS JOIN aclexplode(d.datacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee"
                " WHERE d.datname = %s",
                (name,),
            )
            if privilege in _PRIVILEGES
        ]
    return _Database(
        owner=owner,
        encoding=encoding,
        collate=info["datcollate"],
        ctype=info["datctype"],
        provider=info.get("datlocprovider", "c"),
        # PostgreSQL 17 renamed daticulocale to datlocale.
        locale=info.get("datlocale") or info.get("daticulocale"),
        grants=grants,
    )


def _create_like(conn: psycopg.Connection[Any], name: str, like: _Database) -> None:
    """An empty database with the live one's owner, encoding, locale and privileges."""
    parts = [
        sql.SQL("CREATE DATABASE {} TEMPLATE template0 OWNER {} ENCODING {}").format(
            sql.Identifier(name), sql.Identifier(like.owner), sql.Literal(like.encoding)
        ),
        sql.SQL("LC_COLLATE {} LC_CTYPE {}").format(
            sql.Literal(like.collate), sql.Literal(like.ctype)
        ),
    ]
    if like.provider == "i" and like.locale:
        parts.append(sql.SQL("LOCALE_PROVIDER icu ICU_LOCALE {}").format(sql.Literal(like.locale)))
    elif like.provider == "b" and like.locale:
        parts.append(
            sql.SQL("LOCALE_PROVIDER builtin BUILTIN_LOCALE {}").format(sql.Literal(like.locale))
        )
    conn.execute(sql.SQL(" ").join(parts))
    if like.grants:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))
        for role, privilege in like.grants:
            conn.execute(
                sql.SQL("GRANT {} ON DATABASE {} TO {}").format(
                    sql.SQL(privilege),
                    ident,
                    sql.SQL("PUBLIC") if role is None else sql.Identifier(role),
                )
            )


def _drop(conn: psycopg.Connection[Any], name: str) -> None:
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def _scratch(conn: psycopg.Connection[Any], base: str, like: _Database) -> Iterator[str]:
    """A fresh database to restore into; dropped again unless the caller renamed it away."""
    name = f"{base[:40]}_restore_{secrets.token_hex(4)}"
    _create_like(conn, name, like)
    try:
        yield name
    except BaseException:
        _drop(conn, name)
        raise


def _swap(conn: psycopg.Connection[Any], live: str, restored: str) -> None:
    """Put ``restored`` in the place of ``live`` (both renames in one transaction), then drop
    the old database. Connections to ``live`` are refused meanwhile and terminated."""
    old = f"{live[:40]}_replaced_{secrets.token_hex(4)}"
    live_id = sql.Identifier(live)
    conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(live_id))
    try:
        for attempt in range(SWAP_ATTEMPTS):
            conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (live,),
            )
            try:
                with conn.transaction():
                    conn.execute(
                        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                            live_id, sql.Identifier(old)
                        )
                    )
                    conn.execute(
                        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                            sql.Identifier(restored), live_id
                        )
                    )
                break
            except psycopg.errors.ObjectInUse:
                time.sleep(0.1 * (attempt + 1))
        else:
            raise BackupError(
                f"database {live} stayed in use, nothing was replaced",
                hint="stop what keeps connecting to it (`emily agents serve`?) and retry",
            )
    except BaseException:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(live_id))
        raise
    try:
        _drop(conn, old)
    except psycopg.Error as exc:  # pragma: no cover - the rename released every connection
        log.warning("old_database_left", database=old, error=str(exc).strip())


def restore(settings: Settings, path: Path, into: str | None = None) -> str:
    """Restore a backup atomically. ``into``: a new database (it must not exist yet);
    default: the configured database, replaced only once the restore succeeded."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise BackupError(f"{path} does not exist", field="path")
    admin = postgres_admin_dsn(settings)
    live = database_name(settings)
    if into is not None:
        _check_name(into, "into")
    target = into or live
    # Renaming needs a connection to another database of the server.
    maintenance = "template1" if live == "postgres" else "postgres"
    with connect(_in_database(admin, maintenance), autocommit=True) as conn:
        like = _describe(conn, live)
        if like is None:
            raise BackupError(f"database {live} does not exist", field="database")
        if into is not None and _describe(conn, into) is not None:
            raise BackupError(f"database {into} already exists", field="into")
        with _scratch(conn, target, like) as scratch:
            conninfo, env = _split(admin, scratch)
            _run(
                [
                    _tool(settings, "pg_restore"),
                    "--exit-on-error",
                    "--single-transaction",
                    "-d",
                    conninfo,
                    str(path),
                ],
                env,
                "pg_restore",
            )
            if into is not None:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(scratch), sql.Identifier(into)
                    )
                )
            else:
                _swap(conn, live, scratch)
    log.info("backup_restored", path=str(path), database=target)
    return target
