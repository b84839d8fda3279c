"""HTTP service of the loop: ``emily agents serve`` runs ``create_app(settings)`` under uvicorn."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, Field

from emily import __version__
from emily.agents.loop import Agent, ThreadView, TurnResult
from emily.agents.perception import Stimulus
from emily.config import Settings
from emily.errors import ConfigError

THREAD_ID = r"^[A-Za-z0-9_.:-]{1,128}$"
_bearer = HTTPBearer(auto_error=False)
# Module level: FastAPI resolves these (postponed) annotations in the module's namespace.
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
ThreadId = Annotated[str, PathParam(pattern=THREAD_ID)]


class EpisodeRequest(BaseModel):
    thread_id: str = Field(pattern=THREAD_ID, description="Conversation/thread to continue.")
    stimulus: Stimulus


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.turns = Counter(
            "emily_agent_turns",
            "Turns run through the loop.",
            ["policy", "layer", "degraded"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "emily_agent_turn_seconds",
            "Full loop latency.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13),
            registry=self.registry,
        )

    def observe(self, result: TurnResult) -> None:
        self.turns.labels(result.policy, result.layer, str(result.degraded).lower()).inc()
        self.latency.observe(result.latency_ms / 1000)


def create_app(settings: Settings, *, agent: Agent | None = None) -> FastAPI:
    """The FastAPI app; opens its own ``Agent`` on startup unless one is given."""
    if settings.agents.api_token is None:
        raise ConfigError(
            "the agents API needs a bearer token",
            field="EMILY_AGENTS__API_TOKEN",
            hint="set it, or EMILY_AGENTS__API_TOKEN_FILE to a file holding it",
        )
    token = settings.agents.api_token.get_secret_value().encode()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if agent is not None:
            app.state.agent = agent
            yield
            return
        opened = await Agent.open(settings)
        app.state.agent = opened
        try:
            yield
        finally:
            await opened.close()

    app = FastAPI(
        title="Emily Sovereign agents",
        version=__version__,
        description="The triune perception-action loop over HTTP.",
        lifespan=lifespan,
    )
    if agent is not None:
        app.state.agent = agent

    def authorised(credentials: Credentials) -> None:
        if credentials is None or not secrets.compare_digest(
            credentials.credentials.encode(), token
        ):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or wrong bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def current(request: Request) -> Agent:
        found: Agent = request.app.state.agent
        return found

    @app.post(
        "/v1/episodes",
        response_model=TurnResult,
        dependencies=[Depends(authorised)],
        summary="Run one stimulus through the loop for a thread.",
    )
    async def episodes(body: EpisodeRequest, request: Request) -> TurnResult:
        result = await current(request).step(body.thread_id, body.stimulus)
        metrics.observe(result)
        return result

    @app.get(
        "/v1/threads/{thread_id}",
        response_model=ThreadView,
        dependencies=[Depends(authorised)],
        summary="A thread's state and recent decisions.",
    )
    async def thread(thread_id: ThreadId, request: Request) -> ThreadView:
        view = await current(request).thread(thread_id)
        if view is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no thread {thread_id}")
        return view

    @app.get("/healthz", summary="The process is alive.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="PostgreSQL, Redis and the LLM answer.")
    async def readyz(request: Request) -> JSONResponse:
        checks = await current(request).readiness()
        ready = all(checks.values())
        body: dict[str, Any] = {"ready": ready, "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", summary="Prometheus metrics.")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
