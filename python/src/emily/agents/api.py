"""HTTP service of the loop: ``emily agents serve`` runs ``create_app(settings)`` under uvicorn.

``POST /v1/episodes`` answers 200 only for a turn that is recorded in its thread *and* whose
episode is stored (the body names the episode); every other answer says what was stored. The
admission policy (one turn at a time per thread, a bounded number in flight) is in
``emily.agents.admission``; the body limit and the error bodies in ``emily.agents.guards``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, Field

from emily import __version__
from emily.agents.admission import Admission, BusyError
from emily.agents.errors import TurnFailedError
from emily.agents.guards import BodyLimit, safe_text, validation_body
from emily.agents.loop import Agent, ThreadView, TurnResult, turn_slots
from emily.agents.nodes import short
from emily.agents.perception import Stimulus
from emily.config import Settings
from emily.errors import ConfigError
from emily.features.client import in_loop
from emily.features.metrics import FeatureGauges
from emily.memory.window import accepted_window
from emily.telemetry.logs import get_logger

log = get_logger("agents.api")

THREAD_ID = r"^[A-Za-z0-9_.:-]{1,128}$"
_bearer = HTTPBearer(auto_error=False)
# Module level: FastAPI resolves these (postponed) annotations in the module's namespace.
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
ThreadId = Annotated[str, PathParam(pattern=THREAD_ID)]


class EpisodeRequest(BaseModel):
    thread_id: str = Field(pattern=THREAD_ID, description="Conversation/thread to continue.")
    stimulus: Stimulus


class Stored(BaseModel):
    episode_id: int | None = Field(description="Episode stored by the failed turn (normally none).")
    turn: bool = Field(description="Whether the turn was recorded in its thread (never, here).")


class TurnError(BaseModel):
    """Any answer to ``POST /v1/episodes`` but 200 and 422."""

    detail: str
    stored: Stored


class Metrics:
    def __init__(self, admission: Admission) -> None:
        self.registry = CollectorRegistry()
        self.turns = Counter(
            "emily_agent_turns",
            "Turns run through the loop.",
            ["policy", "layer", "degraded"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "emily_agent_turn_seconds",
            "Full loop latency, from admission.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13),
            registry=self.registry,
        )
        self.refused = Counter(
            "emily_agent_turns_refused",
            "Turns not run or not completed, by HTTP status.",
            ["status"],
            registry=self.registry,
        )
        running = Gauge("emily_agent_turns_running", "Turns running.", registry=self.registry)
        running.set_function(lambda: admission.running)
        queued = Gauge("emily_agent_turns_waiting", "Turns waiting.", registry=self.registry)
        queued.set_function(lambda: admission.queued)

    def observe(self, result: TurnResult) -> None:
        self.turns.labels(result.policy, result.layer, str(result.degraded).lower()).inc()
        self.latency.observe(result.latency_ms / 1000)


def _token(settings: Settings) -> bytes:
    secret = settings.agents.api_token
    value = secret.get_secret_value() if secret is not None else ""
    if not value.strip():
        raise ConfigError(
            "the agents API needs a non-empty bearer token",
            field="EMILY_AGENTS__API_TOKEN",
            hint="set it, or EMILY_AGENTS__API_TOKEN_FILE to a file holding it",
        )
    return value.encode()


def _refusal(code: int, detail: str, retry_after_s: int, episode_id: int | None = None) -> Response:
    body = TurnError(
        detail=safe_text(detail, 500), stored=Stored(episode_id=episode_id, turn=False)
    )
    return JSONResponse(
        body.model_dump(), status_code=code, headers={"Retry-After": str(retry_after_s)}
    )


def create_app(settings: Settings, *, agent: Agent | None = None) -> FastAPI:
    """The FastAPI app; opens its own ``Agent`` on startup unless one is given."""
    token = _token(settings)
    cfg = settings.agents
    slots = turn_slots(settings)
    admission = Admission(
        slots=slots,
        waiting=slots if cfg.max_turns_waiting is None else cfg.max_turns_waiting,
        thread_queue=cfg.thread_queue,
        turn_s=cfg.loop_deadline_s,
    )
    metrics = Metrics(admission)
    # The feature monitor (freshness, missing values, drift) as gauges, where turns use features.
    feature_gauges = FeatureGauges(metrics.registry, settings) if in_loop(settings) else None
    retry_after_s = max(1, round(cfg.loop_deadline_s))

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
    app.add_middleware(BodyLimit, max_bytes=cfg.api_max_body_bytes)
    app.state.admission = admission
    if agent is not None:
        app.state.agent = agent

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_body(exc.errors()), status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Never a traceback or an echo of the request: the log has the details.
        log.error("unhandled", path=request.url.path, error=short(exc))
        return JSONResponse({"detail": "internal error"}, status_code=500)

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
        responses={
            409: {"model": TurnError, "description": "The thread's queue is full."},
            429: {"model": TurnError, "description": "Too many turns in flight."},
            503: {"model": TurnError, "description": "The turn failed; nothing was recorded."},
        },
    )
    async def episodes(body: EpisodeRequest, request: Request) -> Response:
        at = body.stimulus.at
        problem = accepted_window(settings.database).problem(at) if at is not None else None
        if problem is not None:
            error = {"loc": ["body", "stimulus", "at"], "msg": problem, "type": "value_error"}
            return JSONResponse(validation_body([error]), status_code=422)
        try:
            async with admission.turn(body.thread_id) as admitted_at:
                result = await current(request).step(
                    body.thread_id, body.stimulus, admitted_at=admitted_at, atomic=True
                )
        except BusyError as exc:
            metrics.refused.labels(str(exc.status_code)).inc()
            return _refusal(exc.status_code, str(exc), exc.retry_after_s)
        except TurnFailedError as exc:
            metrics.refused.labels("503").inc()
            return _refusal(503, exc.message, retry_after_s, exc.episode_id)
        metrics.observe(result)
        return JSONResponse(result.model_dump(mode="json"))

    @app.get(
        "/v1/threads/{thread_id}",
        response_model=ThreadView,
        dependencies=[Depends(authorised)],
        summary="A thread's state and recent decisions.",
    )
    async def thread(thread_id: ThreadId, request: Request) -> ThreadView:
        try:
            view = await current(request).thread(thread_id)
        except Exception as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"cannot read the thread now ({short(exc)})",
                headers={"Retry-After": str(retry_after_s)},
            ) from exc
        if view is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no thread {thread_id}")
        return view

    @app.get("/healthz", summary="The process is alive (liveness; dependencies: /readyz).")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="PostgreSQL, episodic memory, Redis and the LLM answer.")
    async def readyz(request: Request) -> JSONResponse:
        checks = await current(request).readiness()
        ready = all(checks.values())
        body: dict[str, Any] = {"ready": ready, "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", summary="Prometheus metrics.")
    async def prometheus() -> Response:
        if feature_gauges is not None and feature_gauges.due():
            await asyncio.to_thread(feature_gauges.refresh)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
