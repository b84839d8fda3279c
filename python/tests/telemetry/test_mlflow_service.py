from __future__ import annotations

import json

import httpx
import psycopg
from typer.testing import CliRunner

from emily.cli import app
from emily.locator import resolve_endpoints
from emily.stack.health import http_healthy as healthy
from emily.stack.mlflow import LocalMlflow, sqlalchemy_url
from tests.fixtures.mlflow import MlflowServer


def test_server_answers_and_uses_postgres(mlflow_server: MlflowServer) -> None:
    assert healthy(mlflow_server.tracking_uri)
    endpoints = resolve_endpoints(mlflow_server.settings)
    with psycopg.connect(endpoints.postgres_admin_dsn) as conn:
        conn.execute("SELECT 1")
    mlflow_dsn = endpoints.postgres_admin_dsn.rsplit("/", 1)[0] + "/mlflow"  # as superuser
    with psycopg.connect(mlflow_dsn) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables")}
    assert {"experiments", "runs"} <= tables


def test_otlp_endpoint_requires_experiment_header(mlflow_server: MlflowServer) -> None:
    response = httpx.post(
        f"{mlflow_server.tracking_uri}/v1/traces",
        content=b"",
        headers={"Content-Type": "application/x-protobuf"},
        auth=mlflow_server.auth,
    )
    assert response.status_code == 422


def test_server_refuses_anonymous_writes(mlflow_server: MlflowServer) -> None:
    api = f"{mlflow_server.tracking_uri}/api/2.0/mlflow/experiments"
    anonymous = httpx.post(f"{api}/create", json={"name": "anonymous-write"})
    assert anonymous.status_code == 401
    wrong = httpx.post(f"{api}/create", json={"name": "anonymous-write"}, auth=("emily-admin", "x"))
    assert wrong.status_code == 401
    found = httpx.get(
        f"{api}/get-by-name", params={"experiment_name": "anonymous-write"}, auth=mlflow_server.auth
    )
    assert found.status_code == 404


def test_mlflow_uses_its_own_least_privilege_role(mlflow_server: MlflowServer) -> None:
    endpoints = resolve_endpoints(mlflow_server.settings)
    role = mlflow_server.settings.mlflow.db_role
    # A request makes the server's SQLAlchemy pool hold a connection we can inspect.
    httpx.get(
        f"{mlflow_server.tracking_uri}/api/2.0/mlflow/experiments/search",
        params={"max_results": 1},
        auth=mlflow_server.auth,
    ).raise_for_status()
    with psycopg.connect(endpoints.postgres_admin_dsn) as conn:
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'mlflow'"
        ).fetchone()
        flags = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = %s",
            (role,),
        ).fetchone()
        users = {
            r[0]
            for r in conn.execute(
                "SELECT usename FROM pg_stat_activity"
                " WHERE datname = 'mlflow' AND usename IS NOT NULL AND pid <> pg_backend_pid()"
            )
        }
    assert owner == (role,)
    assert flags == (False, False, False)
    assert users == {role}


def test_up_adopts_running_server(mlflow_server: MlflowServer) -> None:
    record = mlflow_server.stack.up(["mlflow"]).services["mlflow"]
    assert record.pid == mlflow_server.pid
    assert record.details["otlp_traces_url"] == f"{mlflow_server.tracking_uri}/v1/traces"


def test_status_lists_mlflow(mlflow_server: MlflowServer) -> None:
    state_dir = str(mlflow_server.settings.state_dir)
    result = CliRunner().invoke(app, ["--state-dir", state_dir, "status", "--json"])
    by_name = {s["name"]: s for s in json.loads(result.stdout)["services"]}
    assert by_name["mlflow"]["healthy"] and by_name["mlflow"]["url"] == mlflow_server.tracking_uri


def test_probe_of_stopped_server(mlflow_server: MlflowServer) -> None:
    service = LocalMlflow(mlflow_server.settings, mlflow_server.stack.state_dir)
    record = mlflow_server.stack.record("mlflow")
    assert record is not None
    gone = record.model_copy(update={"pid": None, "url": "http://127.0.0.1:9"})
    status = service.probe(gone)
    assert not status.running and not status.healthy
    service.stop(gone)  # nothing to stop: must not fail


def test_sqlalchemy_url_keeps_credentials_and_switches_database() -> None:
    url = sqlalchemy_url("postgresql://postgres:p%40ss@127.0.0.1:5433/emily", "mlflow")
    assert url == "postgresql+psycopg://postgres:p%40ss@127.0.0.1:5433/mlflow"
    keyword = sqlalchemy_url("host=db.internal port=5432 user=u password=x dbname=e", "mlflow")
    assert keyword == "postgresql+psycopg://u:x@db.internal:5432/mlflow"
