"""Settings of the MLflow tracking server."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class MlflowSettings(BaseModel):
    """MLflow tracking server (local stack service or external URL)."""

    tracking_uri: str | None = Field(
        default=None,
        description="External MLflow server (http://host:port). Unset: the local stack's server.",
    )
    username: str | None = Field(
        default=None, description="Basic-auth user for an external server. Local: generated."
    )
    password: SecretStr | None = Field(
        default=None, description="Basic-auth password for an external server."
    )
    port: int = Field(default=0, ge=0, le=65535, description="Local server port; 0 = free port.")
    workers: int = Field(
        default=1, ge=1, le=16, description="Local server worker processes (1 fits 2 cores)."
    )
    database: str = Field(
        default="mlflow",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL database holding MLflow's backend store (local stack).",
    )
    db_role: str = Field(
        default="emily_mlflow",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="Least-privilege role owning MLflow's database (local stack).",
    )
    start_timeout_s: float = Field(
        default=240.0,
        gt=0,
        description="First start migrates MLflow's schema; that takes a while on small machines.",
    )
