"""One way to talk to MLflow: the tracking server from the locator, its basic-auth credentials
handed to MLflow's client, and a dead server failing in a second instead of MLflow's minutes
of retries. ``mlflow`` itself is imported here, inside functions: it costs ~10 s at start-up,
so only commands that use it pay for it."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
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


_HEADER_REGISTRY = "mlflow.tracking.request_header.registry"
_HEADER_GROUP = "mlflow.request_header_provider"


def skip_feast_header_provider() -> None:
    """Load MLflow's request-header providers without Feast's.

    Feast registers one (entry point ``mlflow.request_header_provider`` →
    ``feast.infra.data_sources.mlflow.auth``). MLflow loads every provider of that group on its
    first REST call, which imports all of Feast: 15 s here (typeguard instruments it at import),
    in every process that talks to MLflow, DVC's stage processes included. The provider would
    also add a Bearer token (``MLFLOW_TRACKING_TOKEN``, a Kubernetes service-account file) to
    our requests, which authenticate with basic auth. So that one entry point is left out while
    MLflow builds its registry, once per process."""
    if _HEADER_REGISTRY in sys.modules:
        return
    from mlflow.utils import plugins

    original = plugins.get_entry_points

    def without_feast(group: str) -> list[importlib.metadata.EntryPoint]:
        points = original(group)
        if group != _HEADER_GROUP:
            return points
        return [p for p in points if not p.value.startswith("feast.")]

    plugins.get_entry_points = without_feast  # the registry binds it when imported, just below
    try:
        importlib.import_module(_HEADER_REGISTRY)
    finally:
        plugins.get_entry_points = original


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

    skip_feast_header_provider()
    mlflow.set_tracking_uri(server.uri)
    mlflow.set_registry_uri(server.uri)
    return MlflowClient(tracking_uri=server.uri, registry_uri=server.uri)
