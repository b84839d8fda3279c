"""One typed settings object for the whole system.

Sources, highest priority first:

1. keyword arguments (tests, embedding code),
2. ``EMILY_*`` environment variables; nested fields use ``__`` (``EMILY_DATABASE__DSN``),
3. ``EMILY_*_FILE`` variables: the value is read from the file (systemd credentials, Docker
   secrets), e.g. ``EMILY_DATABASE__DSN_FILE=/run/credentials/emily/dsn``,
4. a TOML file named by ``EMILY_CONFIG`` (else ``$XDG_CONFIG_HOME/emily/emily.toml`` if present),
5. the defaults below, which run everything on the local embedded stack.

Secrets are ``SecretStr`` so they never appear in logs or reprs.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from emily.agents.settings import AgentsSettings
from emily.errors import ConfigError
from emily.inference.settings import InferenceSettings
from emily.mlops.settings import MlflowSettings
from emily.paths import default_cache_dir, default_state_dir
from emily.telemetry.settings import TelemetrySettings

ENV_PREFIX = "EMILY_"
NESTED_DELIMITER = "__"


class DatabaseSettings(BaseModel):
    """PostgreSQL + pgvector. Without ``dsn`` the local stack's server is used."""

    dsn: SecretStr | None = Field(
        default=None, description="Application DSN (least-privilege role). Unset: local stack."
    )
    admin_dsn: SecretStr | None = Field(
        default=None, description="Owner DSN for migrations and maintenance. Unset: same as dsn."
    )
    pool_min_size: int = Field(default=1, ge=0, description="Connections kept open.")
    pool_max_size: int = Field(default=8, ge=1, description="Upper bound of the pool.")
    app_role: str = Field(
        default="emily_app",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="Least-privilege role the application connects as.",
    )
    embedding_dim: int = Field(
        default=384, ge=1, le=16000, description="Dimension of semantic embeddings."
    )
    embedding_storage: Literal["halfvec", "vector"] = Field(
        default="halfvec", description="halfvec halves index size at no measurable recall cost."
    )
    hnsw_m: int = Field(default=16, ge=2, le=100, description="HNSW graph degree (semantic).")
    hnsw_ef_construction: int = Field(
        default=64, ge=4, le=1000, description="HNSW build-time candidate list (semantic)."
    )
    ef_search: int = Field(
        default=80, ge=1, le=1000, description="hnsw.ef_search set per query (recall/speed)."
    )
    partitions_ahead: int = Field(
        default=3, ge=0, le=120, description="Monthly partitions created ahead of now."
    )
    retention_months: int | None = Field(
        default=None, ge=1, description="Drop partitions older than this (unset: keep all)."
    )
    slow_query_ms: float = Field(
        default=200.0, ge=0, description="Queries slower than this are logged (slow_query)."
    )
    statement_timeout_ms: int = Field(
        default=30_000, ge=0, description="Server-side statement timeout for app sessions."
    )
    max_content_chars: int = Field(
        default=16_384, ge=1, description="Longest episode text accepted."
    )


class RedisSettings(BaseModel):
    """Redis (working memory, online features). Without ``url`` the local stack's server is used."""

    url: SecretStr | None = Field(default=None, description="redis:// URL. Unset: local stack.")


class EmbedderSettings(BaseModel):
    """Text embedder: ``local`` runs all-MiniLM-L6-v2 on ONNX Runtime; ``openai`` calls
    an OpenAI-compatible ``/v1/embeddings`` endpoint."""

    kind: Literal["local", "openai"] = Field(
        default="local", description="local: ONNX Runtime; openai: /v1/embeddings endpoint."
    )
    model_dir: Path | None = Field(
        default=None, description="Sentence-transformers model dir. Unset: the shipped wheel."
    )
    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL.")
    api_key: SecretStr | None = Field(default=None, description="API key for base_url.")
    model: str = Field(default="all-MiniLM-L6-v2", description="Model name sent to the API.")
    batch_size: int = Field(default=64, ge=1, description="Texts per embedding batch.")
    threads: int = Field(default=0, ge=0, description="ONNX Runtime intra-op threads; 0 = auto.")


class StackSettings(BaseModel):
    """Local stack (``emily up``): which servers to start and where."""

    postgres_bin_dir: Path | None = Field(
        default=None, description="Directory with initdb/pg_ctl/postgres. Unset: the wheel's."
    )
    postgres_port: int = Field(default=0, ge=0, le=65535, description="0 = pick a free port.")
    postgres_shared_buffers: str = Field(
        default="1GB", description="Sized to hold the HNSW indexes in memory."
    )
    postgres_maintenance_work_mem: str = Field(
        default="1GB", description="HNSW builds are fast only when the graph fits here."
    )
    postgres_max_parallel_maintenance_workers: int = Field(
        default=2, ge=0, description="Parallel workers for index builds."
    )
    redis_bin: Path | None = Field(default=None, description="redis-server. Unset: from PATH.")
    redis_port: int = Field(default=0, ge=0, le=65535, description="0 = pick a free port.")
    start_timeout_s: float = Field(default=60.0, gt=0)


class Settings(BaseSettings):
    """Everything configurable in Emily Sovereign."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        extra="ignore",
        validate_default=True,
    )

    environment: Literal["development", "production"] = Field(
        default="development", description="production: JSON logs always."
    )
    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Local stack data, logs and generated secrets (~/.local/state/emily).",
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Built binaries and converted models (~/.cache/emily).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Minimum level logged."
    )
    log_format: Literal["auto", "console", "json"] = Field(
        default="auto", description="auto: console on a terminal in development, else JSON."
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    stack: StackSettings = Field(default_factory=StackSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    agents: AgentsSettings = Field(default_factory=AgentsSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)

    @field_validator("state_dir", "cache_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            env_settings,
            SecretFileEnvSource(settings_cls),
        ]
        toml_file = config_file_path()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


def config_file_path() -> Path | None:
    """The TOML file to read: ``EMILY_CONFIG`` (must exist) or the per-user default if present."""
    explicit = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist", field="EMILY_CONFIG")
        return path
    default = Path(platformdirs.user_config_path("emily")) / "emily.toml"
    return default if default.is_file() else None


class SecretFileEnvSource(EnvSettingsSource):
    """Reads ``EMILY_<NAME>_FILE`` variables: the setting's value is the file's content.

    The plain variable wins when both are set, so an operator override is never silently lost.
    """

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(
            settings_cls,
            env_prefix=ENV_PREFIX,
            env_nested_delimiter=NESTED_DELIMITER,
            case_sensitive=False,
        )

    def _load_env_vars(self) -> dict[str, str | None]:  # type: ignore[override]
        values: dict[str, str | None] = {}
        for key, file_name in os.environ.items():
            upper = key.upper()
            if not (upper.startswith(ENV_PREFIX) and upper.endswith("_FILE")):
                continue
            target = upper[: -len("_FILE")]
            if target in (k.upper() for k in os.environ) or target == f"{ENV_PREFIX}CONFIG":
                continue
            try:
                content = Path(file_name).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read secret file {file_name}: {exc}", field=key) from exc
            values[target.lower()] = content.rstrip("\r\n")
        return values

    def __call__(self) -> dict[str, Any]:
        self.env_vars = self._load_env_vars()
        return super().__call__()


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning pydantic's validation errors into a ``ConfigError``."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = NESTED_DELIMITER.join(str(part) for part in first["loc"])
        raise ConfigError(
            f"{first['msg']} (got {first.get('input')!r})",
            field=f"{ENV_PREFIX}{location.upper()}",
        ) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()
