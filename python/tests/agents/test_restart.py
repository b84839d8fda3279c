"""A running agents API survives restarts of the session's own PostgreSQL and Redis: requests
while a server is away fail cleanly (503, nothing stored) or degrade, and the first request
after it is back succeeds; ``/readyz`` follows the servers, ``/healthz`` stays 200."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import psycopg
from pydantic import SecretStr

from emily.agents.api import create_app
from emily.agents.loadbench import stored_rows
from emily.config import Settings
from emily.locator import postgres_admin_dsn
from tests.agents.conftest import variant
from tests.conftest import RestartableStack

TOKEN = "restart-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@asynccontextmanager
async def running_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app as `emily agents serve` runs it: it opens its own agent in its lifespan."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=AUTH, timeout=120
        ) as client:
            yield client


async def ready_again(client: httpx.AsyncClient, patience_s: float = 90.0) -> dict[str, bool]:
    """Poll /readyz until it is 200 (the servers need a moment to accept connections)."""
    give_up = time.monotonic() + patience_s
    while True:
        response = await client.get("/readyz")
        if response.status_code == 200 or time.monotonic() > give_up:
            checks: dict[str, bool] = response.json()["checks"]
            return checks
        await asyncio.sleep(0.5)


async def turn(client: httpx.AsyncClient, thread: str, text: str) -> httpx.Response:
    return await client.post("/v1/episodes", json={"thread_id": thread, "stimulus": {"text": text}})


def wait_for_postgres(settings: Settings, patience_s: float = 90.0) -> None:
    """Until the restarted server accepts connections (checked outside the API)."""
    give_up = time.monotonic() + patience_s
    while True:
        try:
            with psycopg.connect(postgres_admin_dsn(settings), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.3)


async def test_the_api_survives_a_postgres_restart(restartable: RestartableStack) -> None:
    stack = restartable.stack
    settings = variant(
        restartable.settings, agents={"cognition_enabled": False, "api_token": SecretStr(TOKEN)}
    )
    thread = f"pg-restart-{uuid.uuid4().hex[:6]}"
    async with running_api(settings) as client:
        first = await turn(client, thread, "Before the restart.")
        assert first.status_code == 200, first.text
        # Several turns at once, so every pool holds connections the restart will leave stale.
        warm = await asyncio.gather(*(turn(client, f"{thread}-w{i}", "Warm.") for i in range(4)))
        assert {r.status_code for r in warm} == {200}

        # 1. A restart with no request in between: the next turns meet the stale connections.
        try:
            stack.down(["postgres"])
        finally:
            stack.up(["postgres"])
        wait_for_postgres(settings)
        after_restart = await asyncio.gather(
            *(turn(client, f"{thread}-w{i}", "Right after the restart.") for i in range(4))
        )
        assert [r.status_code for r in after_restart] == [200] * 4, [r.text for r in after_restart]

        # 2. Requests while the server is away: refused cleanly, nothing stored, liveness kept.
        try:
            stack.down(["postgres"])
            ready = await client.get("/readyz")
            during = await turn(client, thread, "While the database is away.")
            health = await client.get("/healthz")
        finally:
            stack.up(["postgres"])  # up again whatever happened
        assert ready.status_code == 503 and ready.json()["checks"]["postgres"] is False
        assert health.status_code == 200
        assert during.status_code == 503, during.text
        assert during.json()["stored"] == {"episode_id": None, "turn": False}
        assert int(during.headers["retry-after"]) >= 1

        assert (await ready_again(client))["postgres"] is True
        after = await turn(client, thread, "After the restart.")
        assert after.status_code == 200, after.text
        view = (await client.get(f"/v1/threads/{thread}")).json()
    # The failed request left no turn: turn numbers stay gapless, one row per acknowledged turn.
    assert after.json()["turn"] == 2
    assert [h["turn"] for h in view["history"]] == [1, 2]
    rows = sorted(stored_rows(settings, thread))
    assert [(r[0], r[2]) for r in rows if r[1] == thread] == [
        (first.json()["episode_id"], 1),
        (after.json()["episode_id"], 2),
    ]
    assert sorted(r[2] for r in rows if r[1] == f"{thread}-w0") == [1, 2]


async def test_the_api_survives_a_redis_restart(restartable: RestartableStack) -> None:
    stack = restartable.stack
    settings = variant(
        restartable.settings, agents={"cognition_enabled": False, "api_token": SecretStr(TOKEN)}
    )
    thread = f"redis-restart-{uuid.uuid4().hex[:6]}"
    async with running_api(settings) as client:
        assert (await turn(client, thread, "Before.")).status_code == 200
        try:
            stack.down(["redis"])
            ready = await client.get("/readyz")
            during = await turn(client, thread, "Working memory is away.")
        finally:
            stack.up(["redis"])
        assert ready.status_code == 503 and ready.json()["checks"]["redis"] is False
        # Working memory is optional: the turn is stored, and says it was degraded.
        assert during.status_code == 200, during.text
        assert "redis" in (during.json()["degraded_reason"] or "")
        assert (await ready_again(client))["redis"] is True
        after = await turn(client, thread, "After.")
    assert after.status_code == 200
    assert after.json()["turn"] == 3
    assert not after.json()["degraded"], after.json()["degraded_reason"]
