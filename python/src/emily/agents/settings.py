"""Settings of the triune agent loop and its API service."""

from __future__ import annotations

from pydantic import BaseModel


class AgentsSettings(BaseModel):
    """Loop deadlines, drives, working-memory TTLs, API service."""
