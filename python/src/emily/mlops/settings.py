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
    monitor_window: int = Field(
        default=50,
        ge=10,
        description="Monitor: the recent agent turns checked (against the turns before them).",
    )
    monitor_reference: int = Field(
        default=200,
        ge=10,
        description="Monitor: the turns before the window that serve as its reference.",
    )
    monitor_experiment: str = Field(
        default="emily-monitoring",
        description="MLflow experiment of the monitoring runs (one run per model, a metric "
        "series per check).",
    )
    monitor_metrics_path: Path | None = Field(
        default=None,
        description="Prometheus text file the monitor writes its gauges to (node_exporter's "
        "textfile collector reads it); default: <state_dir>/metrics/monitor.prom.",
    )
    error_tolerance: float = Field(
        default=0.25,
        ge=0.0,
        description="Champion error alert (and watch's rollback): the labelled turns' mean "
        "absolute error above the version's held-out MAE by more than this share.",
    )
    ab_alpha: float = Field(
        default=0.05, gt=0, lt=0.5, description="A/B report: level of the always-valid test."
    )
    ab_power: float = Field(
        default=0.8, gt=0, lt=1, description="A/B report: power the sample size is planned for."
    )
    ab_minimum_effect: float = Field(
        default=0.02,
        gt=0,
        description="A/B report: the smallest change in mean absolute error worth detecting.",
    )
    watch_ab: bool = Field(
        default=False,
        description="Watch: after a challenger passes the offline comparison, run an A/B "
        "period and promote only on its decision (else promote on the offline comparison).",
    )
    watch_min_labelled: int = Field(
        default=20,
        ge=1,
        description="Watch: labelled turns (human ratings) a retraining needs as new data.",
    )
