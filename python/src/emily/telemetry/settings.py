"""Settings of tracing and metrics export."""

from __future__ import annotations

from pydantic import BaseModel


class TelemetrySettings(BaseModel):
    """OpenTelemetry exporters (local MLflow, Langfuse)."""
