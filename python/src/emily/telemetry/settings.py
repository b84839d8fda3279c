"""Settings of tracing and metrics export."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class TelemetrySettings(BaseModel):
    """OpenTelemetry exporters (local MLflow, Langfuse)."""

    enabled: bool = Field(default=True, description="Export OpenTelemetry traces at all.")
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces URL. Unset: <MLflow tracking URI>/v1/traces.",
    )
    mlflow_experiment: str = Field(
        default="emily", min_length=1, description="MLflow experiment that receives the traces."
    )
    sample_ratio: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Fraction of root traces kept (parent-based)."
    )
    export_timeout_s: float = Field(
        default=10.0, gt=0, description="Timeout of one OTLP export request."
    )
    langfuse_host: str | None = Field(
        default=None, description="Langfuse base URL (https://cloud.langfuse.com). Unset: off."
    )
    langfuse_public_key: SecretStr | None = Field(
        default=None, description="Langfuse public key (pk-lf-...)."
    )
    langfuse_secret_key: SecretStr | None = Field(
        default=None, description="Langfuse secret key (sk-lf-...)."
    )
