"""Where the MLflow tracking server is, and the experiment traces go to.

A configured ``mlflow.tracking_uri`` (an external server) wins; otherwise the local stack's
``mlflow`` service record says.
"""

from __future__ import annotations

from emily.config import Settings
from emily.errors import StackError, StackNotRunningError
from emily.stack.state import StateDir


def tracking_uri(settings: Settings) -> str:
    """The MLflow tracking URI, or ``StackNotRunningError`` when there is none."""
    if settings.mlflow.tracking_uri:
        return settings.mlflow.tracking_uri.rstrip("/")
    record = StateDir(settings.state_dir).read().services.get("mlflow")
    if record is None or record.pid is None or not record.url:
        raise StackNotRunningError(
            f"no MLflow server configured and none runs under {settings.state_dir}",
            hint=(
                f"run `emily up --state-dir {settings.state_dir}` or set EMILY_MLFLOW__TRACKING_URI"
            ),
        )
    return record.url.rstrip("/")


def ensure_experiment(uri: str, name: str) -> str:
    """The id of experiment ``name`` on the server at ``uri``, created when missing."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=uri)
    try:
        existing = client.get_experiment_by_name(name)
        if existing is not None:
            return str(existing.experiment_id)
        try:
            return str(client.create_experiment(name))
        except MlflowException:
            # Another process created it between our lookup and create.
            again = client.get_experiment_by_name(name)
            if again is None:
                raise
            return str(again.experiment_id)
    except MlflowException as exc:
        raise StackError(f"MLflow at {uri} refused experiment '{name}': {exc.message}") from exc
