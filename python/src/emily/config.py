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
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from emily.agents.settings import AgentsSettings
from emily.drift.settings import DriftSettings
from emily.errors import ConfigError
from emily.features.settings import FeaturesSettings
from emily.inference.settings import InferenceSettings
from emily.memory.settings import DatabaseSettings, EmbedderSettings
from emily.mlops.settings import MlflowSettings, MlopsSettings
from emily.paths import default_cache_dir, default_state_dir
from emily.stack.settings import RedisSettings, StackSettings
from emily.telemetry.settings import TelemetrySettings

ENV_PREFIX = "EMILY_"
NESTED_DELIMITER = "__"


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
    features: FeaturesSettings = Field(default_factory=FeaturesSettings)
    mlops: MlopsSettings = Field(default_factory=MlopsSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)

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
    """Build settings, turning pydantic's validation errors into a ``ConfigError``.

    The offending value is quoted only when the field is not a secret and the value is short:
    a config error must never print a password or token (or echo a huge input).
    """
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = NESTED_DELIMITER.join(str(part) for part in first["loc"])
        shown = _shown_input(first.get("input"), first["loc"])
        raise ConfigError(
            f"{first['msg']}{shown}", field=f"{ENV_PREFIX}{location.upper()}"
        ) from None


def _shown_input(value: Any, loc: tuple[Any, ...]) -> str:
    text = repr(value)
    secretish = any(
        any(word in str(part).lower() for word in ("key", "token", "password", "secret", "dsn"))
        for part in loc
    )
    if secretish or isinstance(value, dict | list) or len(text) > 80:
        return ""
    return f" (got {text})"
