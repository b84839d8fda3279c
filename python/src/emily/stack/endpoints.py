"""Where the servers are: configured DSNs (NixOS services, managed databases) win; otherwise the
local stack's state file under the state directory says."""

from __future__ import annotations

from dataclasses import dataclass

from emily.config import Settings
from emily.errors import StackNotRunningError
from emily.stack.state import StateDir


@dataclass(frozen=True)
class Endpoints:
    postgres_dsn: str
    postgres_admin_dsn: str
    redis_url: str | None


def _local(settings: Settings, service: str, key: str) -> str:
    record = StateDir(settings.state_dir).read().services.get(service)
    if record is None or record.pid is None or key not in record.details:
        raise StackNotRunningError(
            f"no {service} configured and the local stack under {settings.state_dir} is not up",
            hint=f"run `emily up --state-dir {settings.state_dir}` or configure a DSN/URL",
        )
    return str(record.details[key])


def postgres_dsn(settings: Settings) -> str:
    if settings.database.dsn is not None:
        return settings.database.dsn.get_secret_value()
    return _local(settings, "postgres", "app_dsn")


def postgres_admin_dsn(settings: Settings) -> str:
    if settings.database.admin_dsn is not None:
        return settings.database.admin_dsn.get_secret_value()
    if settings.database.dsn is not None:
        return settings.database.dsn.get_secret_value()
    return _local(settings, "postgres", "admin_dsn")


def redis_url(settings: Settings) -> str:
    if settings.redis.url is not None:
        return settings.redis.url.get_secret_value()
    return _local(settings, "redis", "url")


def resolve_endpoints(settings: Settings) -> Endpoints:
    try:
        redis: str | None = redis_url(settings)
    except StackNotRunningError:
        redis = None
    return Endpoints(postgres_dsn(settings), postgres_admin_dsn(settings), redis)
