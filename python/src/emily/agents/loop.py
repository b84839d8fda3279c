"""The agent: opens its dependencies (each may fail and degrade), runs turns, resumes threads.

Two kinds of turn:

* ``step(..., atomic=False)`` (``emily agents run``, the demo, the bench): a failing dependency
  degrades the turn and it goes on; a turn a crash interrupted is finished first (resume).
* ``step(..., atomic=True)`` (the API): the turn is recorded with its episode or not at all. It
  must store its episode, and if anything fails the thread is put back to the checkpoint it
  started from, so a failed answer leaves neither a turn nor (normally) an episode behind.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StateSnapshot
from opentelemetry.trace import Tracer
from pydantic import BaseModel, Field

from emily.agents.checkpoints import CheckpointPool, open_checkpointer
from emily.agents.cognition import PromptProvider, StructuredLLM, builtin_prompt
from emily.agents.context import AgentDeps, EmbedderLike, TurnContext
from emily.agents.errors import TurnFailedError
from emily.agents.graph import build_graph
from emily.agents.nodes import short
from emily.agents.perception import Appraiser, Stimulus
from emily.agents.state import AgentState
from emily.agents.working_memory import WorkingMemory
from emily.config import Settings
from emily.errors import EmilyError
from emily.locator import redis_url
from emily.telemetry.logs import get_logger

if TYPE_CHECKING:
    from emily.agents.ab import ABAppraisers

log = get_logger("agents.loop")

Graph = CompiledStateGraph[AgentState, TurnContext, AgentState, AgentState]


def turn_slots(settings: Settings) -> int:
    """Turns run at once: configured, else the LLM server's parallel slots."""
    return settings.agents.max_turns_in_flight or settings.inference.server.parallel


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
    prompt: str | None = Field(description="Version of the cognition prompt used, if any.")
    appraised_by: str = Field(
        default="words",
        description="What estimated the stimulus's valence: the model version "
        "(emily-appraisal/3), the anchor method (fallback) or the word lists.",
    )
    episode_id: int | None = Field(description="The stored episode (None: memory is off).")
    latency_ms: float
    llm_ms: float | None
    timings: dict[str, float]
    features: dict[str, float | int | None] = Field(
        default_factory=dict,
        description="Online features read by perceive, by view:feature (None: missing).",
    )
    features_unavailable: list[str] = Field(
        default_factory=list,
        description="Feature views without a usable value (missing, older than their TTL, or "
        "newer than the turn).",
    )

    @classmethod
    def from_state(cls, state: AgentState, latency_ms: float) -> TurnResult:
        decision, action = state["decision"], state["action"]
        notes = list(dict.fromkeys(state.get("notes", [])))
        thought = state.get("cognition")
        timings = dict(state.get("timings", {}))
        online = state.get("online_features")
        return cls(
            thread_id=state["thread_id"],
            turn=state["turn"],
            policy=decision["policy"],
            layer=decision["layer"],
            winner=decision["winner"]["layer"],
            expression=action["expression"],
            expected_outcome=action["expected_outcome"],
            degraded=bool(notes),
            degraded_reason="; ".join(notes) if notes else None,
            affect=state["affect"]["vad"],
            mood=state.get("mood", [0.0, 0.0, 0.0]),
            salience=state["salience"],
            candidates=decision["candidates"],
            free_energy=decision["free_energy"],
            posterior=decision["posterior"],
            proposals=[dict(p) for p in decision["proposals"]],
            appraisal=thought["appraisal"] if thought else None,
            prompt=thought["prompt"] if thought else None,
            appraised_by=state.get("appraised_by", "words"),
            episode_id=state.get("episode_id"),
            latency_ms=round(latency_ms, 3),
            llm_ms=timings.get("llm"),
            timings=timings,
            features=dict(online["values"]) if online else {},
            features_unavailable=(
                [*online["missing"], *online["stale"], *online["future"]] if online else []
            ),
        )


class ThreadView(BaseModel):
    thread_id: str
    turn: int
    mood: list[float]
    drives: dict[str, dict[str, float]]
    pending: list[str] = Field(description="Nodes still to run (a turn interrupted by a crash).")
    history: list[dict[str, Any]] = Field(description="Recent turns (``state.HistoryEntry``).")


def open_step(snapshot: StateSnapshot) -> list[str]:
    """The nodes of the thread's step that has no checkpoint yet ([]: the turn is complete).

    Not ``snapshot.next``: that leaves out the nodes whose writes were saved, so a process
    killed after the last node's writes but before the checkpoint after it looks finished, and
    its turn would be overwritten by the next one. The step is open until its checkpoint lands;
    invoking the graph again applies the saved writes without running those nodes twice."""
    return [task.name for task in snapshot.tasks]


class Agent:
    """One compiled graph over opened dependencies. Use ``async with await Agent.open(...)``."""

    def __init__(
        self,
        settings: Settings,
        deps: AgentDeps,
        checkpointer: BaseCheckpointSaver[Any],
        *,
        pool: CheckpointPool | None = None,
        appraiser: Appraiser | None = None,
        prompt: PromptProvider = builtin_prompt,
    ) -> None:
        self.settings = settings
        self.deps = deps
        self.checkpointer = checkpointer
        self.pool = pool
        self.appraiser = appraiser
        self.ab: ABAppraisers | None = None
        self.prompt = prompt
        self.durable = not isinstance(checkpointer, InMemorySaver)
        self.graph: Graph = build_graph().compile(checkpointer=checkpointer)
        self._stack: AsyncExitStack | None = None
        self._resumed: set[str] = set()

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        tracer: Tracer | None = None,
        llm: StructuredLLM | None = None,
        embedder: EmbedderLike | None = None,
        durable: bool = True,
        appraiser: Appraiser | None = None,
        prompt: PromptProvider = builtin_prompt,
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
        deps = AgentDeps(working_memory=wm, embedder=embedder)
        if tracer is not None:
            deps.tracer = tracer
        try:
            if cfg.memory_enabled:
                await cls._open_memory(settings, deps, stack)
            if cfg.cognition_enabled:
                await cls._open_llm(settings, deps, stack, llm)
            await cls._open_features(settings, deps, stack)
            checkpointer: BaseCheckpointSaver[Any]
            pool: CheckpointPool | None = None
            if durable:
                # Each running turn holds a checkpoint connection only briefly; two spare.
                saver, pool = await open_checkpointer(settings, max_size=turn_slots(settings) + 2)
                stack.push_async_callback(pool.close)
                checkpointer = saver
            else:
                checkpointer = InMemorySaver()
        except BaseException:
            await stack.aclose()  # what was opened so far
            raise
        ab: ABAppraisers | None = None
        if appraiser is None and cfg.appraiser == "champion":
            ab = cls._open_appraisers(settings, deps, stack)
            appraiser = ab.champion
        if prompt is builtin_prompt and cfg.prompt_source == "registry" and cfg.cognition_enabled:
            prompt = cls._open_prompt(settings, stack)
        agent = cls(settings, deps, checkpointer, pool=pool, appraiser=appraiser, prompt=prompt)
        agent.ab = ab
        agent._stack = stack
        return agent

    @staticmethod
    async def _open_memory(settings: Settings, deps: AgentDeps, stack: AsyncExitStack) -> None:
        from emily.memory.embedding.factory import create_embedder
        from emily.memory.store import MemoryStore

        if deps.embedder is None:
            try:
                deps.embedder = await asyncio.to_thread(create_embedder, settings)
            except Exception as exc:
                log.warning("embedder_unavailable", error=short(exc))
        embedder: Any = deps.embedder  # the store needs the full Embedder; ours is one
        try:
            store = await asyncio.wait_for(
                asyncio.to_thread(MemoryStore.open, settings, embedder),
                settings.agents.db_connect_timeout_s + 12,
            )
        except Exception as exc:
            deps.memory_error = f"unavailable ({short(exc)})"
            log.warning("memory_unavailable", error=short(exc))
            return
        deps.memory = store
        stack.callback(store.close)

    @staticmethod
    def _open_appraisers(
        settings: Settings, deps: AgentDeps, stack: AsyncExitStack
    ) -> ABAppraisers:
        """The champion's appraiser, and the challenger's for the A/B test when it is on, both
        loading in the background (turns use the anchor method, degraded, until the champion
        is loaded; a thread uses the challenger only once it is loaded)."""
        from emily.agents.ab import ABAppraisers
        from emily.agents.champion import ChampionAppraiser

        embedder = deps.embedder

        def embed(texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
            assert embedder is not None
            return np.asarray(embedder.embed(list(texts)), dtype=np.float32)

        anchor = embed if embedder is not None else None
        share = settings.agents.ab_challenger_share
        champion = ChampionAppraiser(settings, anchor)
        challenger = ChampionAppraiser(settings, anchor, alias="challenger")
        appraisers = ABAppraisers(champion, challenger, share)
        champion.start()
        stack.callback(champion.close)
        if share > 0:
            challenger.start()
            stack.callback(challenger.close)
        return appraisers

    @staticmethod
    def _open_prompt(settings: Settings, stack: AsyncExitStack) -> PromptProvider:
        from emily.agents.prompt_registry import RegistryPrompt

        provider = RegistryPrompt(settings)
        provider.start()
        stack.callback(provider.close)
        return provider

    @staticmethod
    async def _open_features(settings: Settings, deps: AgentDeps, stack: AsyncExitStack) -> None:
        """The feature server client, when turns use the feature store (``features.in_loop``);
        a server that cannot be located is a degraded note on every turn, never a failure."""
        from emily.features.client import FeatureClient, in_loop

        if not in_loop(settings):
            return
        try:
            client = FeatureClient.from_settings(settings)
        except EmilyError as exc:
            deps.features_error = f"unavailable ({short(exc)})"
            log.warning("features_unavailable", error=short(exc))
            return
        stack.push_async_callback(client.aclose)
        deps.features = client
        if not await client.warm_up():
            log.warning("features_not_answering", url=client.base_url)

    @staticmethod
    async def _open_llm(
        settings: Settings, deps: AgentDeps, stack: AsyncExitStack, llm: StructuredLLM | None
    ) -> None:
        if llm is not None:
            deps.llm = llm
            return
        from emily.inference.client import InferenceClient

        try:
            client = InferenceClient.from_settings(settings)
        except Exception as exc:
            deps.llm_error = f"unavailable ({short(exc)})"
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
        pool = self.pool

        async def postgres() -> bool:
            if pool is None:
                return False
            async with pool.connection(timeout=timeout) as conn:
                await asyncio.wait_for(conn.execute("SELECT 1"), timeout)
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
        ready = {name: r is True for name, r in zip(checks, results, strict=True)}
        if self.settings.agents.memory_enabled:
            ready["memory"] = self.deps.memory is not None
        return ready

    # --- turns ------------------------------------------------------------------------------

    @staticmethod
    def config(thread_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id}}

    def context(
        self,
        *,
        thread_id: str | None = None,
        admitted_at: float | None = None,
        cognition_deadline_s: float | None = None,
        require_episode: bool = False,
    ) -> TurnContext:
        """The run context of one turn; its deadline counts from ``admitted_at``
        (``time.monotonic()``, default now). The thread's A/B arm picks its appraiser."""
        start = time.monotonic() if admitted_at is None else admitted_at
        appraiser, assignment = self.appraiser, None
        if self.ab is not None and thread_id is not None:
            appraiser, assignment = self.ab.for_thread(thread_id)
        return TurnContext(
            settings=self.settings.agents,
            deps=self.deps,
            deadline=start + self.settings.agents.loop_deadline_s,
            cognition_deadline_s=cognition_deadline_s,
            require_episode=require_episode,
            appraiser=appraiser,
            ab=assignment,
            prompt=self.prompt,
        )

    async def _invoke(
        self, payload: AgentState | None, thread_id: str, ctx: TurnContext
    ) -> AgentState:
        values = await self.graph.ainvoke(
            payload,
            self.config(thread_id),
            context=ctx,
            durability=self.settings.agents.durability,
        )
        return cast(AgentState, values)

    async def step(
        self,
        thread_id: str,
        stimulus: Stimulus,
        *,
        admitted_at: float | None = None,
        cognition_deadline_s: float | None = None,
        atomic: bool = False,
    ) -> TurnResult:
        """Run one stimulus through the loop. ``atomic``: see the module docstring; raises
        ``TurnFailedError`` (saying what was stored) when the turn could not be completed."""
        ctx = self.context(
            thread_id=thread_id,
            admitted_at=admitted_at,
            cognition_deadline_s=cognition_deadline_s,
            require_episode=atomic and self.settings.agents.memory_enabled,
        )
        head: RunnableConfig | None = None
        if atomic:
            try:
                head = await self._completed_head(thread_id)
            except Exception as exc:
                raise TurnFailedError(
                    f"cannot read the thread's checkpoints ({short(exc)}); no episode was "
                    "stored and the turn was not recorded",
                    hint="retry the request",
                ) from exc
        elif thread_id not in self._resumed:
            # Once per thread and process: only a crash of an earlier process leaves a turn open.
            await self.resume(thread_id)
            self._resumed.add(thread_id)
        started = time.perf_counter()
        payload: AgentState = {
            "thread_id": thread_id,
            "stimulus": stimulus.to_state(),
        }
        with self.deps.tracer.start_as_current_span(
            "agents.turn", attributes={"emily.thread_id": thread_id}
        ) as span:
            try:
                values = await self._invoke(payload, thread_id, ctx)
                result = TurnResult.from_state(values, (time.perf_counter() - started) * 1000)
            except Exception as exc:
                # (A cancelled turn is left as it is: the thread's next turn discards it.)
                if not atomic:
                    raise
                raise await self._failed(thread_id, head, ctx, exc) from exc
            span.set_attributes(
                {
                    "emily.turn": result.turn,
                    "emily.policy": result.policy,
                    "emily.layer": result.layer,
                    "emily.degraded": result.degraded,
                    "emily.appraised_by": result.appraised_by,
                    "emily.prompt.version": result.prompt or "",
                }
            )
            if ctx.ab is not None:
                span.set_attributes(
                    {"emily.ab.experiment": ctx.ab.experiment, "emily.ab.arm": ctx.ab.arm}
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

    async def _completed_head(self, thread_id: str) -> RunnableConfig | None:
        """The checkpoint the thread's last completed turn left (``None``: a new thread),
        putting the thread back there first if a failed or interrupted turn is pending."""
        config = self.config(thread_id)
        snapshot = await self.graph.aget_state(config)
        if not snapshot.values:
            return None
        if not (pending := open_step(snapshot)):
            return snapshot.config
        head: RunnableConfig | None = None
        async for earlier in self.graph.aget_state_history(config):
            if earlier.values and not open_step(earlier):
                head = earlier.config
                break
        log.warning("discarding_unfinished_turn", thread_id=thread_id, pending=pending)
        await self._restore(thread_id, head)
        return head

    async def _restore(self, thread_id: str, head: RunnableConfig | None) -> None:
        """Make ``head`` the thread's latest checkpoint again (a copy of it: history is kept)."""
        if head is None:
            await self.checkpointer.adelete_thread(thread_id)
        else:
            await self.graph.aupdate_state(head, None, as_node="__copy__")

    async def _failed(
        self, thread_id: str, head: RunnableConfig | None, ctx: TurnContext, exc: BaseException
    ) -> TurnFailedError:
        """Roll the thread back to ``head`` and say what the failed turn left stored."""
        recorded = "the turn was not recorded"
        try:
            await self._restore(thread_id, head)
        except Exception as restore_exc:
            # The next turn on this thread finds the unfinished turn and discards it then.
            log.warning("rollback_failed", thread_id=thread_id, error=short(restore_exc))
            recorded = "the turn was not completed (it is discarded before the thread's next turn)"
        episode_id = ctx.receipt.episode_id
        known = exc.message if isinstance(exc, TurnFailedError) else None
        message = known or f"the turn failed ({short(exc)})"
        if episode_id is not None:
            stored = f"episode {episode_id} was stored, but {recorded}"
        else:
            stored = f"no episode was stored and {recorded}"
        log.warning("turn_failed", thread_id=thread_id, error=message, episode_id=episode_id)
        return TurnFailedError(
            f"{message}; {stored}", episode_id=episode_id, hint="retry the request"
        )

    async def resume(self, thread_id: str) -> TurnResult | None:
        """Finish a turn a crash interrupted, from its last checkpoint; ``None`` if none was."""
        snapshot = await self.graph.aget_state(self.config(thread_id))
        if not (pending := open_step(snapshot)):
            return None
        log.info("resume", thread_id=thread_id, pending=pending)
        started = time.perf_counter()
        values = await self._invoke(None, thread_id, self.context(thread_id=thread_id))
        return TurnResult.from_state(values, (time.perf_counter() - started) * 1000)

    async def thread(self, thread_id: str) -> ThreadView | None:
        snapshot = await self.graph.aget_state(self.config(thread_id))
        values = cast(AgentState, snapshot.values)
        if not values:
            return None
        return ThreadView(
            thread_id=thread_id,
            turn=values.get("turn", 0),
            mood=values.get("mood", [0.0, 0.0, 0.0]),
            drives={name: dict(d) for name, d in values.get("drives", {}).items()},
            pending=open_step(snapshot),
            history=[dict(h) for h in values.get("history", [])],
        )
