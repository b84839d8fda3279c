"""The agents API on the real stack: answers, auth, and bad input that never becomes a 500."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from emily.agents.api import create_app
from emily.agents.loadbench import stored_rows
from emily.agents.loop import Agent
from emily.config import Settings
from emily.errors import ConfigError
from tests.agents.conftest import closed_port, llm_down, variant

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = 4096  # api_max_body_bytes of these tests


def api_settings(settings: Settings, **agents: Any) -> Settings:
    return variant(
        settings,
        agents={
            "cognition_enabled": False,
            "api_token": SecretStr(TOKEN),
            "api_max_body_bytes": LIMIT,
            **agents,
        },
    )


@pytest_asyncio.fixture(loop_scope="function")
async def api(agents_settings: Settings, embedder: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_settings(agents_settings)
    async with await Agent.open(settings, embedder=embedder) as agent:
        app = create_app(settings, agent=agent)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_episode_thread_health_metrics(
    api: httpx.AsyncClient, agents_settings: Settings
) -> None:
    thread = f"api-{uuid.uuid4().hex[:8]}"
    body = {"thread_id": thread, "stimulus": {"text": "A friend says hello.", "social": 0.9}}
    response = await api.post("/v1/episodes", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    turn = response.json()
    assert turn["turn"] == 1 and turn["thread_id"] == thread
    # 200 means stored: the answer names the episode, and that row is this thread's turn 1.
    assert stored_rows(agents_settings, thread) == [(turn["episode_id"], thread, 1)]
    view = await api.get(f"/v1/threads/{thread}", headers=AUTH)
    assert view.status_code == 200
    assert view.json()["history"][0]["policy"] == turn["policy"]
    assert view.json()["history"][0]["episode_id"] == turn["episode_id"]
    assert (await api.get("/v1/threads/nobody", headers=AUTH)).status_code == 404
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"postgres": True, "redis": True, "memory": True}
    metrics = (await api.get("/metrics")).text
    assert "emily_agent_turns_total" in metrics and "emily_agent_turn_seconds" in metrics
    assert "emily_agent_turns_running 0.0" in metrics
    schema = (await api.get("/openapi.json")).json()
    assert "/v1/episodes" in schema["paths"]
    assert {"409", "429", "503"} <= set(schema["paths"]["/v1/episodes"]["post"]["responses"])
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
    ("body", "field"),
    [
        ({"thread_id": "api-bad", "stimulus": {}}, "stimulus.text"),
        ({"thread_id": "api-bad", "stimulus": {"text": "x", "threat": 3}}, "stimulus.threat"),
        ({"thread_id": "bad id with spaces", "stimulus": {"text": "x"}}, "thread_id"),
        ({"thread_id": "api-bad", "stimulus": {"text": "x", "unknown": 1}}, "stimulus.unknown"),
        ({"stimulus": {"text": "x"}}, "thread_id"),
    ],
    ids=["no-text", "threat-range", "thread-id", "extra-field", "no-thread"],
)
async def test_malformed_payloads(api: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    response = await api.post("/v1/episodes", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert response.json()["detail"][0]["msg"]


# Raw JSON text, because json.dumps would refuse some of these (NaN) or escape them differently.
HOSTILE = {
    "nul-in-text": ('{"text": "a\\u0000b"}', "stimulus.text"),
    "nul-in-source": ('{"text": "hello", "source": "x\\u0000"}', "stimulus.source"),
    "surrogate-in-text": ('{"text": "a\\ud800b"}', "stimulus.text"),
    "surrogate-in-source": ('{"text": "hello", "source": "\\udfff"}', "stimulus.source"),
    "nan-threat": ('{"text": "hello", "threat": NaN}', "stimulus.threat"),
    "infinite-valence": ('{"text": "hello", "valence": Infinity}', "stimulus.valence"),
    "calendar-start": ('{"text": "hello", "at": "0001-01-01T00:30:00+01:00"}', "stimulus.at"),
    "calendar-end": ('{"text": "hello", "at": "9999-12-31T23:30:00-01:00"}', "stimulus.at"),
    "no-offset": ('{"text": "hello", "at": "2026-05-01T12:00:00"}', "stimulus.at"),
    "before-window": ('{"text": "hello", "at": "1990-01-01T00:00:00+00:00"}', "stimulus.at"),
    "after-window": ('{"text": "hello", "at": "2999-01-01T00:00:00+00:00"}', "stimulus.at"),
    "surrogate-key": ('{"text": "hello", "\\ud800": 1}', "stimulus"),
    "long-text": (json.dumps({"text": "x" * 4001}), "stimulus.text"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_stimuli_are_422_naming_the_field(
    api: httpx.AsyncClient, agents_settings: Settings, case: str
) -> None:
    stimulus, field = HOSTILE[case]
    thread = f"hostile-{case}-{uuid.uuid4().hex[:6]}"
    raw = f'{{"thread_id": "{thread}", "stimulus": {stimulus}}}'.encode()
    response = await api.post(
        "/v1/episodes", content=raw, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    # The error never echoes the input (4001 characters here at most) and is valid JSON.
    assert len(response.content) < 1500
    assert "xxxxxxxxxx" not in response.text
    # Nothing was stored: no turn in the thread, no episode.
    assert (await api.get(f"/v1/threads/{thread}", headers=AUTH)).status_code == 404
    assert stored_rows(agents_settings, thread) == []


async def test_a_timestamp_inside_the_window_is_stored(
    api: httpx.AsyncClient, agents_settings: Settings
) -> None:
    thread = f"api-at-{uuid.uuid4().hex[:6]}"
    body = {"thread_id": thread, "stimulus": {"text": "Lunch.", "at": "2026-01-05T12:30:00+05:00"}}
    response = await api.post("/v1/episodes", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert [r[1:] for r in stored_rows(agents_settings, thread)] == [(thread, 1)]


async def test_bodies_over_the_limit_are_413_before_auth(api: httpx.AsyncClient) -> None:
    big = json.dumps({"thread_id": "api-big", "stimulus": {"text": "x" * (LIMIT + 10)}})
    # Declared length over the limit: refused unread, with or without a token.
    for headers in ({}, AUTH):
        response = await api.post(
            "/v1/episodes", content=big, headers={**headers, "content-type": "application/json"}
        )
        assert response.status_code == 413
        assert len(response.content) < 200

    # No declared length (chunked): refused once the bytes read pass the limit.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(LIMIT // 512 + 4):
            yield b"x" * 512

    response = await api.post(
        "/v1/episodes", content=chunks(), headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert (await api.get("/v1/threads/api-big", headers=AUTH)).status_code == 404
    # A body just under the limit is read and parsed as usual (here: invalid JSON → 422).
    response = await api.post(
        "/v1/episodes",
        content=b"{" * (LIMIT - 1),
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert len(response.content) < 1500


async def test_malformed_thread_id_and_body(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/threads/a%20b", headers=AUTH)).status_code == 422
    response = await api.post(
        "/v1/episodes", content=b"{not json", headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["field"]


@pytest.mark.parametrize("token", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_app_needs_a_non_empty_token(agents_settings: Settings, token: str | None) -> None:
    settings = variant(
        agents_settings, agents={"api_token": None if token is None else SecretStr(token)}
    )
    with pytest.raises(ConfigError, match="API_TOKEN"):
        create_app(settings)


def test_serve_refuses_an_empty_token(
    agents_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from emily.cli import app

    monkeypatch.setenv("EMILY_AGENTS__API_TOKEN", "")
    result = CliRunner().invoke(
        app, ["--state-dir", str(agents_settings.state_dir), "agents", "serve"]
    )
    assert result.exit_code == 1
    assert "EMILY_AGENTS__API_TOKEN" in result.stderr and "non-empty" in result.stderr


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
    assert response.json()["episode_id"] is None  # memory is off: nothing to store


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
            assert (await client.get("/healthz")).status_code == 200  # liveness only
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "postgres": True,
        "redis": False,
        "llm": False,
        "memory": True,
    }
