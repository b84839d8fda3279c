"""Settings of the MLflow tracking server."""

from __future__ import annotations

from pydantic import BaseModel


class MlflowSettings(BaseModel):
    """MLflow tracking server (local stack service or external URL)."""
