from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from emily.agents.api import create_app
from emily.agents.loop import Agent
from emily.config import Settings
from emily.errors import ConfigError
from tests.agents.conftest import closed_port, llm_down, variant

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest_asyncio.fixture(loop_scope="function")
async def api(agents_settings: Settings, embedder: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = variant(
        agents_settings,
        agents={"cognition_enabled": False, "api_token": SecretStr(TOKEN)},
    )
    async with await Agent.open(settings, embedder=embedder) as agent:
        app = create_app(settings, agent=agent)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_episode_thread_health_metrics(api: httpx.AsyncClient) -> None:
    body = {"thread_id": "api-1", "stimulus": {"text": "A friend says hello.", "social": 0.9}}
    response = await api.post("/v1/episodes", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    turn = response.json()
    assert turn["turn"] == 1 and turn["thread_id"] == "api-1"
    view = await api.get("/v1/threads/api-1", headers=AUTH)
    assert view.status_code == 200
    assert view.json()["history"][0]["policy"] == turn["policy"]
    assert (await api.get("/v1/threads/nobody", headers=AUTH)).status_code == 404
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"postgres": True, "redis": True}
    metrics = (await api.get("/metrics")).text
    assert "emily_agent_turns_total" in metrics and "emily_agent_turn_seconds" in metrics
    schema = (await api.get("/openapi.json")).json()
    assert "/v1/episodes" in schema["paths"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["missing", "wrong", "not-bearer"],
)
async def test_auth_failures(api: httpx.AsyncClient, headers: dict[str, str]) -> None:
    body = {"thread_id": "api-auth", "stimulus": {"text": "hello"}}
    response = await api.post("/v1/episodes", json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert (await api.get("/v1/threads/api-auth", headers=headers)).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"thread_id": "api-bad", "stimulus": {}},
        {"thread_id": "api-bad", "stimulus": {"text": "x", "threat": 3}},
        {"thread_id": "bad id with spaces", "stimulus": {"text": "x"}},
        {"thread_id": "api-bad", "stimulus": {"text": "x", "unknown": 1}},
        {"stimulus": {"text": "x"}},
    ],
    ids=["no-text", "threat-range", "thread-id", "extra-field", "no-thread"],
)
async def test_malformed_payloads(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await api.post("/v1/episodes", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_malformed_thread_id_and_body(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/threads/a%20b", headers=AUTH)).status_code == 422
    response = await api.post(
        "/v1/episodes", content=b"{not json", headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 422


def test_app_needs_a_token(agents_settings: Settings) -> None:
    with pytest.raises(ConfigError, match="API_TOKEN"):
        create_app(agents_settings)


async def test_app_opens_its_own_agent(agents_settings: Settings) -> None:
    settings = variant(
        agents_settings,
        agents={"cognition_enabled": False, "memory_enabled": False, "api_token": SecretStr("t")},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            body = {"thread_id": "api-own", "stimulus": {"text": "hi"}}
            response = await client.post(
                "/v1/episodes", json=body, headers={"Authorization": "Bearer t"}
            )
    assert response.status_code == 200, response.text
    assert response.json()["episode_id"] is None


async def test_readyz_is_503_when_a_dependency_is_down(
    agents_settings: Settings, embedder: Any
) -> None:
    settings = variant(
        agents_settings,
        agents={"api_token": SecretStr(TOKEN)},
        redis=agents_settings.redis.model_copy(
            update={"url": SecretStr(f"redis://127.0.0.1:{closed_port()}/0")}
        ),
    )
    async with await Agent.open(llm_down(settings), embedder=embedder) as agent:
        app = create_app(settings, agent=agent)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"postgres": True, "redis": False, "llm": False}
