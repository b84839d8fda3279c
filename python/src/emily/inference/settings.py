"""Settings of the inference gateway (filled in by the inference issue)."""

from __future__ import annotations

from pydantic import BaseModel


class InferenceSettings(BaseModel):
    """Backends, deadlines, retries and the local llama.cpp server."""
