"""Agents tests run on the session's real stack: PostgreSQL, Redis and (where named) the local
llama-server. Variants of the settings point single dependencies at closed ports."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from emily.config import Settings
from emily.inference.settings import BackendSettings, RetrySettings
from emily.locator import Endpoints
from emily.memory.embedding.factory import create_embedder
from emily.memory.store import MemoryStore


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def variant(settings: Settings, agents: dict[str, Any] | None = None, **top: Any) -> Settings:
    update = dict(top)
    if agents:
        update["agents"] = settings.agents.model_copy(update=agents)
    return settings.model_copy(update=update)


def llm_down(settings: Settings) -> Settings:
    inference = settings.inference.model_copy(
        update={
            "backends": [
                BackendSettings(
                    name="down", kind="llama-cpp", base_url=f"http://127.0.0.1:{closed_port()}/v1"
                )
            ],
            "retry": RetrySettings(attempts=1),
        }
    )
    return variant(settings, inference=inference)


@pytest.fixture(scope="session")
def agents_settings(endpoints: Endpoints, settings: Settings) -> Settings:
    """The session stack with the episodic memory schema in place."""
    MemoryStore(settings).migrate()
    return variant(settings, agents={"loop_deadline_s": 110.0, "cognition_deadline_s": 100.0})


@pytest.fixture(scope="session")
def embedder(agents_settings: Settings) -> Any:
    return create_embedder(agents_settings)
