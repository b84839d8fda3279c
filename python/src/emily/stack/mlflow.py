"""An MLflow tracking server under the state directory: backend store in our PostgreSQL
(database ``mlflow``, owned by its own least-privilege role ``emily_mlflow``, never the
superuser), artifacts under ``<state_dir>/mlflow/artifacts``, listening on 127.0.0.1, behind
MLflow's basic-auth app (admin user and generated password; every client of ours sends them).

It also ingests OpenTelemetry traces over OTLP/HTTP at ``/v1/traces`` (MLflow >= 3.6), which is
where ``emily.telemetry.tracing`` exports. MLflow's background job runner is switched off
(``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``): it would spawn extra worker processes for
features we do not use.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import quote

from emily.errors import BinaryNotFoundError
from emily.locator import MLFLOW_ADMIN_PASSWORD_SECRET, MLFLOW_ADMIN_USER, postgres_admin_dsn
from emily.stack.health import http_healthy
from emily.stack.postgres import ensure_owned_database
from emily.stack.process import choose_port, pid_alive, terminate_group
from emily.stack.service import LocalService
from emily.statefile import ServiceRecord, write_private

DB_PASSWORD_SECRET = "mlflow-db-password"  # noqa: S105 - a file name, not a password


def mlflow_executable() -> Path:
    """The ``mlflow`` console script of the environment we run in."""
    candidate = Path(sys.executable).parent / "mlflow"
    if not candidate.is_file():
        raise BinaryNotFoundError(
            f"mlflow not found next to {sys.executable}", hint="run `make setup` (uv sync)"
        )
    return candidate


def sqlalchemy_url(dsn: str, database: str) -> str:
    """The SQLAlchemy URL (psycopg 3 driver) of ``database`` on the server ``dsn`` points at.

    Written out rather than built with SQLAlchemy's ``URL``: the credentials only need
    percent-encoding, and the stack should not import MLflow's ORM to start MLflow."""
    from psycopg.conninfo import conninfo_to_dict  # lazily: `emily status` imports this module

    params = conninfo_to_dict(dsn)
    user = quote(str(params.get("user") or ""), safe="")
    password = params.get("password")
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
    host = str(params.get("host") or "127.0.0.1")
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql+psycopg://{auth}{host}{port}/{quote(database, safe='')}"


class LocalMlflow(LocalService):
    name = "mlflow"

    @property
    def artifacts(self) -> Path:
        return self.home / "artifacts"

    @property
    def logfile(self) -> Path:
        return self.home / "mlflow.log"

    def answers(self, record: ServiceRecord) -> bool:
        return record.url is not None and http_healthy(record.url)

    def stop(self, record: ServiceRecord) -> None:
        if record.pid is not None:
            terminate_group(record.pid)

    def _backend_uri(self) -> str:
        """MLflow's own role on its own database (created here, password as a verifier)."""
        settings = self.settings.mlflow
        admin_dsn = postgres_admin_dsn(self.settings)
        from psycopg.conninfo import make_conninfo

        password = self.state.secret(DB_PASSWORD_SECRET)
        ensure_owned_database(admin_dsn, settings.database, settings.db_role, password)
        dsn = make_conninfo(admin_dsn, user=settings.db_role, password=password)
        return sqlalchemy_url(dsn, settings.database)

    def _auth_config(self) -> Path:
        """MLflow's basic-auth configuration: users in a SQLite file beside the server, every
        request authenticated, the admin password from the stack's secrets (0600 file)."""
        path = self.home / "basic_auth.ini"
        write_private(
            path,
            "\n".join(
                [
                    "[mlflow]",
                    "default_permission = NO_PERMISSIONS",
                    f"database_uri = sqlite:///{self.home / 'basic_auth.db'}",
                    f"admin_username = {MLFLOW_ADMIN_USER}",
                    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
                    "grant_default_workspace_access = false",
                    # PBKDF2 per request is the cost of basic auth; cache successful checks.
                    "auth_cache_ttl_seconds = 60",
                    "",
                ]
            ),
        )
        return path

    def start(self, previous: ServiceRecord | None) -> ServiceRecord:
        executable = mlflow_executable()
        previous = previous or self.recover()
        settings = self.settings.mlflow
        if (
            previous is not None
            and previous.url
            and pid_alive(previous.pid)
            and http_healthy(previous.url)
        ):
            if settings.port and settings.port != previous.port:
                self.warn(
                    f"already running on port {previous.port}; the configured port "
                    f"{settings.port} takes effect after `emily down -s mlflow && emily up -s "
                    "mlflow`"
                )
            return self.remember(previous)
        backend_uri = self._backend_uri()
        port = choose_port(settings.port, previous.port if previous else None, "mlflow", self.warn)
        url = f"http://127.0.0.1:{port}"
        self.artifacts.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = dict(os.environ)
        # Secrets travel in the environment (readable only by this user), not on the command
        # line, which `ps` shows to everyone.
        env["MLFLOW_BACKEND_STORE_URI"] = backend_uri
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(self._auth_config())
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = self.state.secret(MLFLOW_ADMIN_PASSWORD_SECRET)
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = self.state.secret("mlflow-flask-secret")
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        env.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
        env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        env.setdefault("DO_NOT_TRACK", "true")
        args = [
            str(executable),
            "server",
            "--app-name",
            "basic-auth",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(settings.workers),
            "--artifacts-destination",
            str(self.artifacts),
        ]
        process = self.spawn_until_healthy(
            args, env, url, settings.start_timeout_s, what="mlflow server", hint=""
        )
        return self.remember(
            ServiceRecord(
                name=self.name,
                pid=process.pid,
                port=port,
                url=url,
                details={
                    "tracking_uri": url,
                    "otlp_traces_url": f"{url}/v1/traces",
                    "database": settings.database,
                    "db_role": settings.db_role,
                    "admin_user": MLFLOW_ADMIN_USER,
                    "artifacts": str(self.artifacts),
                    "log": str(self.logfile),
                },
            )
        )
