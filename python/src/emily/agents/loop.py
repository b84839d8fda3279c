"""The agent: opens its dependencies (each may fail and degrade), runs turns, resumes threads."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from opentelemetry import trace
from opentelemetry.trace import Tracer
from pydantic import BaseModel, Field

from emily.agents.checkpoints import open_checkpointer
from emily.agents.graph import AgentDeps, TriuneLoop, _short
from emily.agents.perception import Stimulus
from emily.agents.state import AgentState
from emily.agents.working_memory import WorkingMemory
from emily.config import Settings
from emily.errors import EmilyError
from emily.locator import redis_url
from emily.telemetry.logs import get_logger

log = get_logger("agents.loop")


class AgentError(EmilyError):
    """The loop cannot run at all (not a degraded turn: those still answer)."""


class TurnResult(BaseModel):
    """What one stimulus led to."""

    thread_id: str
    turn: int
    policy: str
    layer: str = Field(description="Layer whose proposal was chosen.")
    winner: str = Field(description="Layer that won the salience competition (broadcast).")
    expression: str
    expected_outcome: str
    degraded: bool
    degraded_reason: str | None
    affect: list[float]
    mood: list[float]
    salience: float
    candidates: list[str]
    free_energy: dict[str, dict[str, float]]
    posterior: dict[str, float]
    proposals: list[dict[str, Any]]
    appraisal: str | None
    episode_id: int | None
    latency_ms: float
    llm_ms: float | None
    timings: dict[str, float]

    @classmethod
    def from_state(cls, values: dict[str, Any], latency_ms: float) -> TurnResult:
        decision = values["decision"]
        notes = list(dict.fromkeys(values.get("notes", [])))
        cognition = values.get("cognition") or {}
        timings = dict(values.get("timings", {}))
        return cls(
            thread_id=values["thread_id"],
            turn=values["turn"],
            policy=decision["policy"],
            layer=decision["layer"],
            winner=decision["winner"]["layer"],
            expression=values["action"]["expression"],
            expected_outcome=values["action"]["expected_outcome"],
            degraded=bool(notes),
            degraded_reason="; ".join(notes) if notes else None,
            affect=values["affect"]["vad"],
            mood=values.get("mood", [0.0, 0.0, 0.0]),
            salience=values["salience"],
            candidates=decision["candidates"],
            free_energy=decision["free_energy"],
            posterior=decision["posterior"],
            proposals=decision["proposals"],
            appraisal=cognition.get("appraisal"),
            episode_id=values.get("episode_id"),
            latency_ms=round(latency_ms, 3),
            llm_ms=timings.get("llm"),
            timings=timings,
        )


class ThreadView(BaseModel):
    thread_id: str
    turn: int
    mood: list[float]
    drives: dict[str, dict[str, float]]
    pending: list[str] = Field(description="Nodes still to run (a turn interrupted by a crash).")
    history: list[dict[str, Any]]


class Agent:
    """One compiled graph over opened dependencies. Use ``async with Agent.open(settings)``."""

    def __init__(
        self, settings: Settings, deps: AgentDeps, checkpointer: BaseCheckpointSaver[Any]
    ) -> None:
        self.settings = settings
        self.deps = deps
        self.checkpointer = checkpointer
        self.durable = not isinstance(checkpointer, InMemorySaver)
        self.graph = TriuneLoop(deps).build().compile(checkpointer=checkpointer)
        self._stack: AsyncExitStack | None = None
        self.db_conn: Any = None
        self._resumed: set[str] = set()

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        tracer: Tracer | None = None,
        llm: Any = None,
        embedder: Any = None,
        durable: bool = True,
    ) -> Agent:
        """Open memory, embedder, LLM client, Redis and checkpoints; whatever fails is noted."""
        stack = AsyncExitStack()
        cfg = settings.agents
        try:
            url: str | None = redis_url(settings)
        except EmilyError:
            url = None
        wm = WorkingMemory(
            url,
            timeout_s=cfg.redis_timeout_s,
            ttl_s=cfg.working_memory_ttl_s,
            maxlen=cfg.broadcast_maxlen,
        )
        stack.push_async_callback(wm.close)
        deps = AgentDeps(settings=cfg, working_memory=wm)
        if tracer is not None:
            deps.tracer = tracer
        deps.embedder = embedder
        if cfg.memory_enabled:
            await cls._open_memory(settings, deps, stack)
        if cfg.cognition_enabled:
            await cls._open_llm(settings, deps, stack, llm)
        checkpointer: BaseCheckpointSaver[Any]
        conn: Any = None
        if durable:
            try:
                saver, conn = await open_checkpointer(settings)
            except BaseException:
                await stack.aclose()  # what was opened so far
                raise
            stack.push_async_callback(conn.close)
            checkpointer = saver
        else:
            checkpointer = InMemorySaver()
        agent = cls(settings, deps, checkpointer)
        agent._stack = stack
        agent.db_conn = conn if durable else None
        return agent

    @staticmethod
    async def _open_memory(settings: Settings, deps: AgentDeps, stack: AsyncExitStack) -> None:
        from emily.memory.embedding import create_embedder
        from emily.memory.store import MemoryStore

        if deps.embedder is None:
            try:
                deps.embedder = await asyncio.to_thread(create_embedder, settings)
            except Exception as exc:
                log.warning("embedder_unavailable", error=_short(exc))
        try:
            store = await asyncio.wait_for(
                asyncio.to_thread(MemoryStore.open, settings, deps.embedder),  # type: ignore[arg-type]
                settings.agents.db_connect_timeout_s + 12,
            )
        except Exception as exc:
            deps.memory_error = f"unavailable ({_short(exc)})"
            log.warning("memory_unavailable", error=_short(exc))
            return
        deps.memory = store
        stack.callback(store.close)

    @staticmethod
    async def _open_llm(
        settings: Settings, deps: AgentDeps, stack: AsyncExitStack, llm: Any
    ) -> None:
        if llm is not None:
            deps.llm = llm
            return
        from emily.inference.client import InferenceClient

        try:
            client = InferenceClient.from_settings(settings)
        except Exception as exc:
            deps.llm_error = f"unavailable ({_short(exc)})"
            return
        stack.push_async_callback(client.aclose)
        deps.llm = client
        first = settings.inference.backends[0] if settings.inference.backends else None
        deps.llm_model = (first.model if first is not None else None) or (
            settings.inference.server.model_alias
        )

    async def __aenter__(self) -> Agent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    async def readiness(self) -> dict[str, bool]:
        """Which dependencies answer now (each check bounded by a short timeout)."""
        timeout = self.settings.agents.redis_timeout_s * 4

        async def postgres() -> bool:
            if self.db_conn is None:
                return False
            await asyncio.wait_for(self.db_conn.execute("SELECT 1"), timeout)
            return True

        async def llm() -> bool:
            health = getattr(self.deps.llm, "health", None)
            if health is None:
                return False
            answers = await asyncio.wait_for(health(), timeout)
            return any(answers.values())

        checks = {"postgres": postgres(), "redis": self.deps.working_memory.ping(), "llm": llm()}
        if not self.settings.agents.cognition_enabled:
            checks.pop("llm").close()
        results = await asyncio.gather(*checks.values(), return_exceptions=True)
        return {name: r is True for name, r in zip(checks, results, strict=True)}

    # --- turns ------------------------------------------------------------------------------

    @staticmethod
    def config(thread_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id}}

    async def step(self, thread_id: str, stimulus: Stimulus) -> TurnResult:
        """Run one stimulus through the loop (finishing an interrupted turn first)."""
        if thread_id not in self._resumed:
            # Once per thread and process: only a crash of an earlier process leaves a turn open.
            await self.resume(thread_id)
            self._resumed.add(thread_id)
        started = time.perf_counter()
        payload: AgentState = {
            "thread_id": thread_id,
            "stimulus": stimulus.model_dump(mode="json", exclude_none=True),
            "deadline_at": time.time() + self.settings.agents.loop_deadline_s,
        }
        tracer = self.deps.tracer
        with tracer.start_as_current_span(
            "agents.turn", attributes={"emily.thread_id": thread_id}
        ) as span:
            values = await self.graph.ainvoke(
                payload, self.config(thread_id), durability=self.settings.agents.durability
            )
            result = TurnResult.from_state(values, (time.perf_counter() - started) * 1000)
            span.set_attributes(
                {
                    "emily.turn": result.turn,
                    "emily.policy": result.policy,
                    "emily.layer": result.layer,
                    "emily.degraded": result.degraded,
                }
            )
            if result.degraded:
                span.set_attribute("emily.degraded_reason", result.degraded_reason or "")
        log.info(
            "turn",
            thread_id=thread_id,
            turn=result.turn,
            policy=result.policy,
            layer=result.layer,
            degraded=result.degraded,
            latency_ms=result.latency_ms,
        )
        return result

    async def resume(self, thread_id: str) -> TurnResult | None:
        """Finish a turn a crash interrupted, from its last checkpoint; ``None`` if none was."""
        config = self.config(thread_id)
        snapshot = await self.graph.aget_state(config)
        if not snapshot.next:
            return None
        log.info("resume", thread_id=thread_id, pending=list(snapshot.next))
        started = time.perf_counter()
        values = await self.graph.ainvoke(None, config)
        return TurnResult.from_state(values, (time.perf_counter() - started) * 1000)

    async def thread(self, thread_id: str) -> ThreadView | None:
        snapshot = await self.graph.aget_state(self.config(thread_id))
        values = snapshot.values
        if not values:
            return None
        return ThreadView(
            thread_id=thread_id,
            turn=values.get("turn", 0),
            mood=values.get("mood", [0.0, 0.0, 0.0]),
            drives=values.get("drives", {}),
            pending=list(snapshot.next),
            history=values.get("history", []),
        )


def current_tracer() -> Tracer:
    return trace.get_tracer("emily.agents")
