"""An MLflow tracking server under the state directory: backend store in our PostgreSQL
(database ``mlflow``), artifacts under ``<state_dir>/mlflow/artifacts``, listening on 127.0.0.1.

It also ingests OpenTelemetry traces over OTLP/HTTP at ``/v1/traces`` (MLflow >= 3.6), which is
where ``emily.telemetry.tracing`` exports. MLflow's background job runner is switched off
(``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``): it would spawn extra worker processes for
features we do not use.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from emily.config import Settings
from emily.errors import BinaryNotFoundError, StackError
from emily.stack.endpoints import postgres_admin_dsn
from emily.stack.process import choose_port, pid_alive, terminate, wait_until
from emily.stack.service import ServiceStatus
from emily.stack.state import ServiceRecord, StateDir


def mlflow_executable() -> Path:
    """The ``mlflow`` console script of the environment we run in."""
    candidate = Path(sys.executable).parent / "mlflow"
    if not candidate.is_file():
        raise BinaryNotFoundError(
            f"mlflow not found next to {sys.executable}", hint="run `make setup` (uv sync)"
        )
    return candidate


def sqlalchemy_url(dsn: str, database: str) -> str:
    """The SQLAlchemy URL (psycopg 3 driver) of ``database`` on the server ``dsn`` points at."""
    from sqlalchemy.engine import URL

    params = conninfo_to_dict(dsn)
    port = params.get("port")
    url = URL.create(
        "postgresql+psycopg",
        username=str(params["user"]) if params.get("user") else None,
        password=str(params["password"]) if params.get("password") else None,
        host=str(params.get("host") or "127.0.0.1"),
        port=int(str(port)) if port else None,
        database=database,
    )
    return url.render_as_string(hide_password=False)


def ensure_database(admin_dsn: str, database: str) -> None:
    """Create MLflow's database once (CREATE DATABASE cannot run inside a transaction)."""
    try:
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    except psycopg.Error as exc:
        raise StackError(f"cannot create the MLflow database '{database}': {exc}") from exc


def healthy(url: str, timeout_s: float = 2.0) -> bool:
    try:
        response = httpx.get(f"{url}/health", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def terminate_group(pid: int, timeout_s: float = 20.0) -> None:
    """Stop the server and the uvicorn worker it spawns: they share the session we started."""
    leader = False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        leader = pid_alive(pid) and os.getpgid(pid) == pid
    if leader:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    terminate(pid, timeout_s)
    if leader:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


class LocalMlflow:
    name = "mlflow"

    def __init__(self, settings: Settings, state: StateDir) -> None:
        self.settings = settings
        self.state = state
        self.home = state.service_dir("mlflow")
        self.artifacts = self.home / "artifacts"
        self.logfile = self.home / "mlflow.log"

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(encoding="utf-8").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self, previous: ServiceRecord | None) -> ServiceRecord:
        executable = mlflow_executable()
        if (
            previous is not None
            and previous.url
            and pid_alive(previous.pid)
            and healthy(previous.url)
        ):
            return previous
        settings = self.settings.mlflow
        admin_dsn = postgres_admin_dsn(self.settings)
        ensure_database(admin_dsn, settings.database)
        port = choose_port(settings.port, previous.port if previous else None, "mlflow")
        url = f"http://127.0.0.1:{port}"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # The backend URI holds a password: pass it in the environment, not on the command line.
        env["MLFLOW_BACKEND_STORE_URI"] = sqlalchemy_url(admin_dsn, settings.database)
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        env.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
        env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        env.setdefault("DO_NOT_TRACK", "true")
        args = [
            str(executable),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(settings.workers),
            "--artifacts-destination",
            str(self.artifacts),
        ]
        with self.logfile.open("ab") as log:
            process = subprocess.Popen(
                args,
                cwd=self.home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ready = wait_until(
            lambda: process.poll() is not None or healthy(url), settings.start_timeout_s, 0.5
        )
        if process.poll() is not None:
            raise StackError(
                f"mlflow server exited with code {process.returncode}:\n{self._log_tail()}",
                hint=f"full log: {self.logfile}",
            )
        if not ready:
            terminate_group(process.pid)
            raise StackError(
                f"mlflow server did not answer on {url}/health within "
                f"{settings.start_timeout_s:.0f} s",
                hint=f"see {self.logfile}",
            )
        return ServiceRecord(
            name=self.name,
            pid=process.pid,
            port=port,
            url=url,
            details={
                "tracking_uri": url,
                "otlp_traces_url": f"{url}/v1/traces",
                "database": settings.database,
                "artifacts": str(self.artifacts),
                "log": str(self.logfile),
            },
        )

    def stop(self, record: ServiceRecord) -> None:
        if record.pid is not None:
            terminate_group(record.pid)

    def probe(self, record: ServiceRecord) -> ServiceStatus:
        running = pid_alive(record.pid)
        is_healthy = running and record.url is not None and healthy(record.url)
        return ServiceStatus(
            name=self.name,
            running=running,
            healthy=is_healthy,
            pid=record.pid if running else None,
            url=record.url,
            detail=str(self.home),
        )
