"""Settings of the feature store (Feast: Redis online store, PostgreSQL offline store)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FeaturesSettings(BaseModel):
    """The Feast feature repository, its online/offline stores and the feature server."""

    server_url: str | None = Field(
        default=None,
        description="External feature server (http://host:port). Unset: the local stack's.",
    )
    port: int = Field(default=0, ge=0, le=65535, description="Local feature server port.")
