"""One way to talk to MLflow: the tracking server from the locator, its basic-auth credentials
handed to MLflow's client, and a dead server failing in a second instead of MLflow's minutes
of retries. ``mlflow`` itself is imported here, inside functions: it costs ~10 s at start-up,
so only commands that use it pay for it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from emily import locator
from emily.errors import StackNotRunningError
from emily.telemetry.mlflow_rest import healthy

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from emily.config import Settings

# MLflow's HTTP client retries a refused connection with backoff for minutes by default.
_FAIL_FAST = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    # Our commands show their own progress; MLflow's per-file download bars only add noise.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


def connect(settings: Settings) -> MlflowClient:
    """An ``MlflowClient`` on the configured (or local) server, which must answer now."""
    server = locator.mlflow(settings)
    if not healthy(server.uri):
        raise StackNotRunningError(
            f"MLflow at {server.uri} does not answer",
            hint="start it with `emily up -s mlflow` or set EMILY_MLFLOW__TRACKING_URI",
        )
    for key, value in _FAIL_FAST.items():
        os.environ.setdefault(key, value)
    if server.auth is not None:
        # MLflow's client reads basic-auth credentials from these variables only.
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = server.auth
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(server.uri)
    mlflow.set_registry_uri(server.uri)
    return MlflowClient(tracking_uri=server.uri, registry_uri=server.uri)
