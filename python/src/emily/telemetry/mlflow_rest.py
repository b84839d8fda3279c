"""The two MLflow REST calls tracing needs (health, experiment by name), over plain HTTP.

Tracing runs in every process that serves turns; importing the ``mlflow`` package for these
two calls would cost about ten seconds of start-up, so they are made with ``httpx2`` directly
(MLflow REST API 2.0, the same endpoints ``MlflowClient`` calls)."""

from __future__ import annotations

import base64

import httpx2

from emily.errors import StackError
from emily.locator import MlflowEndpoint


def auth_headers(endpoint: MlflowEndpoint) -> dict[str, str]:
    """HTTP Basic credentials of the endpoint (empty when it needs none)."""
    if endpoint.auth is None:
        return {}
    user, password = endpoint.auth
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def healthy(uri: str, timeout_s: float = 2.0) -> bool:
    try:
        response = httpx2.get(f"{uri}/health", timeout=timeout_s)
    except httpx2.HTTPError:
        return False
    return response.status_code == 200


def ensure_experiment(endpoint: MlflowEndpoint, name: str, timeout_s: float = 10.0) -> str:
    """The id of experiment ``name``, created when missing (a concurrent creator wins)."""
    headers = auth_headers(endpoint)
    api = f"{endpoint.uri}/api/2.0/mlflow/experiments"
    try:
        with httpx2.Client(headers=headers, timeout=timeout_s) as client:
            for _ in range(2):
                found = client.get(f"{api}/get-by-name", params={"experiment_name": name})
                if found.status_code == 200:
                    return str(found.json()["experiment"]["experiment_id"])
                _raise_for_auth(found, endpoint)
                created = client.post(f"{api}/create", json={"name": name})
                if created.status_code == 200:
                    return str(created.json()["experiment_id"])
                _raise_for_auth(created, endpoint)
                # RESOURCE_ALREADY_EXISTS: another process created it; look it up again.
    except httpx2.HTTPError as exc:
        raise StackError(f"MLflow at {endpoint.uri} did not answer: {exc}") from exc
    raise StackError(f"MLflow at {endpoint.uri} refused experiment '{name}'")


def _raise_for_auth(response: httpx2.Response, endpoint: MlflowEndpoint) -> None:
    if response.status_code in (401, 403):
        raise StackError(
            f"MLflow at {endpoint.uri} refused our credentials ({response.status_code})",
            hint="set EMILY_MLFLOW__USERNAME and EMILY_MLFLOW__PASSWORD[_FILE]",
        )
