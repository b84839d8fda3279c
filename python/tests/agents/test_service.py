"""The service's turn policy on real checkpoints and real episodic memory: one turn at a time
per thread (gapless turn numbers), bounded turns in flight (409/429 with Retry-After), and
200 only for a turn whose episode is stored (a failed turn is rolled back and says so)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from emily.agents.admission import Admission
from emily.agents.api import create_app
from emily.agents.errors import TurnFailedError
from emily.agents.loadbench import Answer, check, stored_rows
from emily.agents.loop import Agent
from emily.agents.perception import Stimulus
from emily.config import Settings
from tests.agents.conftest import variant

TOKEN = "service-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def served(settings: Settings, **agents: Any) -> Settings:
    return variant(
        settings, agents={"cognition_enabled": False, "api_token": SecretStr(TOKEN), **agents}
    )


@asynccontextmanager
async def client_for(
    settings: Settings, embedder: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    async with await Agent.open(settings, embedder=embedder) as agent:
        app = create_app(settings, agent=agent)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=AUTH, timeout=300
        ) as client:
            yield client, app


async def post(client: httpx.AsyncClient, thread: str, text: str) -> httpx.Response:
    return await client.post("/v1/episodes", json={"thread_id": thread, "stimulus": {"text": text}})


def answer(thread: str, response: httpx.Response) -> Answer:
    body = response.json()
    if response.status_code == 200:
        return Answer(
            thread, 200, 0.0, turn=body["turn"], episode_id=body["episode_id"], loop_ms=1.0
        )
    return Answer(thread, response.status_code, 0.0, retry_after=response.headers["retry-after"])


async def test_concurrent_turns_on_a_thread_are_serialised_and_gapless(
    agents_settings: Settings, embedder: Any
) -> None:
    prefix = f"serial-{uuid.uuid4().hex[:6]}-"
    threads, per_thread = 4, 6
    settings = served(
        agents_settings, max_turns_in_flight=3, max_turns_waiting=100, thread_queue=per_thread
    )
    async with client_for(settings, embedder) as (client, _):
        names = [f"{prefix}{t}" for t in range(threads) for _ in range(per_thread)]
        responses = await asyncio.gather(
            *(post(client, name, f"Message {i} for {name}.") for i, name in enumerate(names))
        )
        assert [r.status_code for r in responses] == [200] * len(names), [
            r.text for r in responses if r.status_code != 200
        ]
        views = [(await client.get(f"/v1/threads/{prefix}{t}")).json() for t in range(threads)]
    answers = [answer(name, r) for name, r in zip(names, responses, strict=True)]
    for t in range(threads):
        turns = sorted(a.turn or 0 for a in answers if a.thread_id == f"{prefix}{t}")
        assert turns == list(range(1, per_thread + 1))  # unique and gapless
    for view in views:
        assert view["turn"] == per_thread and view["pending"] == []
        assert [h["turn"] for h in view["history"]] == list(range(1, per_thread + 1))
    rows = stored_rows(agents_settings, prefix)
    assert len(rows) == threads * per_thread
    assert check(answers, rows) == {
        "acknowledged_without_row": 0,
        "rows_behind_failed_answers": 0,
        "turns_gapless_per_thread": True,
    }


async def test_beyond_the_limits_requests_are_refused_with_retry_after(
    agents_settings: Settings, embedder: Any
) -> None:
    prefix = f"admit-{uuid.uuid4().hex[:6]}-"
    settings = served(agents_settings, max_turns_in_flight=1, max_turns_waiting=0, thread_queue=0)
    async with client_for(settings, embedder) as (client, app):
        admission: Admission = app.state.admission
        # Hold the only slot, as a running turn would.
        async with admission.turn(f"{prefix}holder"):
            assert admission.running == 1
            refused = await post(client, f"{prefix}a", "Hello?")
            metrics = (await client.get("/metrics")).text
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["stored"] == {"episode_id": None, "turn": False}
        assert 'emily_agent_turns_refused_total{status="429"} 1.0' in metrics
        assert (await client.get(f"/v1/threads/{prefix}a")).status_code == 404
        # Slot free again: the same request is run and stored.
        accepted = await post(client, f"{prefix}a", "Hello?")
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["turn"] == 1

    settings = served(agents_settings, max_turns_in_flight=2, max_turns_waiting=4, thread_queue=0)
    async with client_for(settings, embedder) as (client, app):
        admission = app.state.admission
        async with admission.turn(f"{prefix}busy"):
            busy = await post(client, f"{prefix}busy", "Me too.")
            other = await post(client, f"{prefix}other", "Someone else.")
        assert busy.status_code == 409
        assert int(busy.headers["retry-after"]) >= 1
        assert "already has a turn running" in busy.json()["detail"]
        assert other.status_code == 200, other.text
    rows = stored_rows(agents_settings, prefix)
    assert sorted(r[1:] for r in rows) == [(f"{prefix}a", 1), (f"{prefix}other", 1)]


async def test_overload_answers_200_or_429_and_every_200_is_stored(
    agents_settings: Settings, embedder: Any
) -> None:
    prefix = f"overload-{uuid.uuid4().hex[:6]}-"
    settings = served(agents_settings, max_turns_in_flight=2, max_turns_waiting=2, thread_queue=1)
    names = [f"{prefix}{i % 6}" for i in range(18)]
    async with client_for(settings, embedder) as (client, app):
        responses = await asyncio.gather(*(post(client, n, "A burst.") for n in names))
        assert app.state.admission.running == 0 and app.state.admission.queued == 0
    statuses = {r.status_code for r in responses}
    assert statuses <= {200, 409, 429}
    assert sum(r.status_code == 200 for r in responses) >= 2
    refused = [r for r in responses if r.status_code != 200]
    assert all(r.headers.get("retry-after") for r in refused)
    answers = [answer(n, r) for n, r in zip(names, responses, strict=True)]
    assert check(answers, stored_rows(agents_settings, prefix)) == {
        "acknowledged_without_row": 0,
        "rows_behind_failed_answers": 0,
        "turns_gapless_per_thread": True,
    }


async def test_a_turn_whose_episode_cannot_be_stored_is_rolled_back(
    agents_settings: Settings, embedder: Any
) -> None:
    """The store refuses the episode (its occurred_at is outside the accepted window): the
    atomic turn fails, says nothing was stored, and the thread is as it was before it."""
    thread = f"rollback-{uuid.uuid4().hex[:6]}"
    settings = variant(agents_settings, agents={"cognition_enabled": False})
    outside = Stimulus(text="Long ago.", at=datetime(1990, 1, 1, tzinfo=UTC))
    async with await Agent.open(settings, embedder=embedder) as agent:
        # A first failing turn on a new thread leaves no thread at all.
        try:
            await agent.step(thread, outside, atomic=True)
        except TurnFailedError as exc:
            first = exc
        assert "episode was not stored" in str(first) and "not recorded" in str(first)
        assert first.episode_id is None
        assert await agent.thread(thread) is None
        done = await agent.step(thread, Stimulus(text="Today."), atomic=True)
        assert done.turn == 1 and done.episode_id is not None
        try:
            await agent.step(thread, outside, atomic=True)
        except TurnFailedError as exc:
            second = exc
        assert second.episode_id is None
        view = await agent.thread(thread)
        assert view is not None and view.turn == 1 and not view.pending
        assert [h["turn"] for h in view.history] == [1]
        again = await agent.step(thread, Stimulus(text="Tomorrow."), atomic=True)
        assert again.turn == 2
        # Not atomic (the CLI): the same failure is a degraded turn that goes on.
        loose = await agent.step(thread, outside)
        assert loose.turn == 3 and loose.episode_id is None
        assert loose.degraded_reason and "consolidate failed" in loose.degraded_reason
    assert sorted(r[2] for r in stored_rows(agents_settings, thread)) == [1, 2]
