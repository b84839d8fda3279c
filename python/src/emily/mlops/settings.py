"""Settings of the MLflow tracking server and of the model lifecycle (pipeline, registry)."""

from __future__ import annotations

from pathlib import Path

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


class MlopsSettings(BaseModel):
    """The appraisal model's lifecycle: DVC pipeline, MLflow experiment, registry governance."""

    pipeline_dir: Path | None = Field(
        default=None,
        description="Checkout's pipeline/ (dvc.yaml). Unset: the repository this code runs from.",
    )
    dvc_remote_url: str | None = Field(
        default=None,
        description="DVC remote (s3://bucket/path, /srv/dvc). Unset: <state_dir>/dvc-remote.",
    )
    experiment: str = Field(
        default="emily-appraisal", min_length=1, description="MLflow experiment of training runs."
    )
    model_name: str = Field(
        default="emily-appraisal", min_length=1, description="Registered model of the appraiser."
    )
    prompt_name: str = Field(
        default="emily-cognition", min_length=1, description="Prompt registry name (cognition)."
    )
    prompt_alias: str = Field(
        default="production", min_length=1, description="Alias the agent loads its prompt by."
    )
    approved_by: str | None = Field(
        default=None, description="Who approves promotions when --approved-by is not given."
    )
    promote_alpha: float = Field(
        default=0.05, gt=0, lt=0.5, description="Significance level of the promotion test."
    )
    bootstrap_samples: int = Field(
        default=2000, ge=100, le=100_000, description="Paired-bootstrap resamples (promotion)."
    )
    appraisal_refresh_s: float = Field(
        default=30.0, gt=0, description="How often the loop checks whether the champion moved."
    )
    appraisal_timeout_s: float = Field(
        default=20.0, gt=0, description="Loading the champion gives up after this (fallback)."
    )
