"""The one service locator: where every server is and how to authenticate to it.

Configured addresses win (NixOS services, managed databases, remote GPUs): ``database.dsn``,
``redis.url``, ``inference.backends[*].base_url``, ``mlflow.tracking_uri``,
``features.server_url``. Otherwise the local stack's state file under the state directory
says where ``emily up`` started each server. Nothing else in the code base reads the state
file for an address, so a service that moves on restart is found again by every consumer.

This module is in the bottom layer (it needs only the settings and the state file), so every
package above may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from emily.errors import StackNotRunningError
from emily.statefile import ServiceRecord, StateDir

if TYPE_CHECKING:
    from emily.config import Settings

POSTGRES = "postgres"
REDIS = "redis"
LLM = "llm"
MLFLOW = "mlflow"
FEATURES = "features"

# Secrets the local stack generates (file names under <state_dir>/secrets/).
LLM_API_KEY_SECRET = "llm-api-key"  # noqa: S105 - a file name, not a secret
MLFLOW_ADMIN_PASSWORD_SECRET = "mlflow-admin-password"  # noqa: S105
MLFLOW_ADMIN_USER = "emily-admin"


def _hint(settings: Settings, service: str, configure: str) -> str:
    return f"run `emily up --state-dir {settings.state_dir}` or set {configure}"


def local_record(settings: Settings, service: str, *, configure: str) -> ServiceRecord:
    """The running local service's record, or ``StackNotRunningError`` naming the fix."""
    record = StateDir(settings.state_dir).read().services.get(service)
    if record is None or record.pid is None:
        raise StackNotRunningError(
            f"no {service} configured and the local stack under {settings.state_dir} "
            f"does not run it",
            hint=_hint(settings, service, configure),
        )
    return record


def _detail(settings: Settings, service: str, key: str, configure: str) -> str:
    record = local_record(settings, service, configure=configure)
    value = record.details.get(key)
    if not value:
        raise StackNotRunningError(
            f"the local {service} record has no {key}", hint=_hint(settings, service, configure)
        )
    return str(value)


def is_external(settings: Settings, service: str) -> bool:
    """Is this service configured to be elsewhere (so the local stack need not run it)?"""
    if service == POSTGRES:
        return settings.database.dsn is not None
    if service == REDIS:
        return settings.redis.url is not None
    if service == MLFLOW:
        return settings.mlflow.tracking_uri is not None
    if service == LLM:
        return all(b.base_url is not None for b in settings.inference.backends)
    if service == FEATURES:
        return settings.features.server_url is not None
    return False


def postgres_dsn(settings: Settings) -> str:
    """The application DSN (least-privilege role)."""
    if settings.database.dsn is not None:
        return settings.database.dsn.get_secret_value()
    return _detail(settings, POSTGRES, "app_dsn", "EMILY_DATABASE__DSN")


def postgres_admin_dsn(settings: Settings) -> str:
    """The owner DSN, for migrations and maintenance."""
    if settings.database.admin_dsn is not None:
        return settings.database.admin_dsn.get_secret_value()
    if settings.database.dsn is not None:
        return settings.database.dsn.get_secret_value()
    return _detail(settings, POSTGRES, "admin_dsn", "EMILY_DATABASE__ADMIN_DSN")


def redis_url(settings: Settings) -> str:
    if settings.redis.url is not None:
        return settings.redis.url.get_secret_value()
    return _detail(settings, REDIS, "url", "EMILY_REDIS__URL")


def llm_base_url(settings: Settings) -> str:
    """The OpenAI base URL (``.../v1``) of the local stack's llama-server."""
    record = local_record(settings, LLM, configure="EMILY_INFERENCE__BACKENDS")
    if not record.url:
        raise StackNotRunningError("the local llm record has no URL")
    return record.url


def llm_api_key(settings: Settings) -> str | None:
    """The bearer token the local llama-server requires (``--api-key``), if it runs."""
    try:
        local_record(settings, LLM, configure="EMILY_INFERENCE__BACKENDS")
    except StackNotRunningError:
        return None
    return StateDir(settings.state_dir).secret(LLM_API_KEY_SECRET)


@dataclass(frozen=True)
class MlflowEndpoint:
    """An MLflow tracking server and the basic-auth credentials for it (if it needs them)."""

    uri: str
    username: str | None = None
    password: str | None = None

    @property
    def auth(self) -> tuple[str, str] | None:
        if self.username is None or self.password is None:
            return None
        return self.username, self.password


def mlflow(settings: Settings) -> MlflowEndpoint:
    """The tracking server: configured (credentials from settings), else the local one."""
    config = settings.mlflow
    if config.tracking_uri:
        password = config.password.get_secret_value() if config.password else None
        return MlflowEndpoint(config.tracking_uri.rstrip("/"), config.username, password)
    record = local_record(settings, MLFLOW, configure="EMILY_MLFLOW__TRACKING_URI")
    if not record.url:
        raise StackNotRunningError("the local mlflow record has no URL")
    user = str(record.details.get("admin_user") or MLFLOW_ADMIN_USER)
    password = StateDir(settings.state_dir).secret(MLFLOW_ADMIN_PASSWORD_SECRET)
    return MlflowEndpoint(record.url.rstrip("/"), user, password)


def mlflow_uri(settings: Settings) -> str:
    return mlflow(settings).uri


def feature_server_url(settings: Settings) -> str:
    """The Feast feature server (``feast serve``) base URL."""
    if settings.features.server_url is not None:
        return settings.features.server_url.rstrip("/")
    record = local_record(settings, FEATURES, configure="EMILY_FEATURES__SERVER_URL")
    if not record.url:
        raise StackNotRunningError("the local features record has no URL")
    return record.url.rstrip("/")


@dataclass(frozen=True)
class Endpoints:
    postgres_dsn: str
    postgres_admin_dsn: str
    redis_url: str | None


def resolve_endpoints(settings: Settings) -> Endpoints:
    """PostgreSQL (required) and Redis (optional) in one call."""
    try:
        redis: str | None = redis_url(settings)
    except StackNotRunningError:
        redis = None
    return Endpoints(postgres_dsn(settings), postgres_admin_dsn(settings), redis)
