"""The triune loop as a LangGraph ``StateGraph``.

``perceive → recall → (instinct ∥ affect ∥ cognition) → workspace → act → consolidate``

Every node is wrapped in an OpenTelemetry span. Nodes never raise for a failing dependency: they
add a note ("cognition: DeadlineExceeded ...") and the turn goes on with what the lower layers
offer; a turn with notes is reported as degraded.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
from langgraph.graph import END, START, StateGraph
from opentelemetry import trace
from opentelemetry.trace import Tracer

from emily.agents import drives as drv
from emily.agents import opponent_process as opp
from emily.agents import world
from emily.agents.cognition import StructuredLLM, deliberate, messages_for
from emily.agents.perception import Stimulus, features, salience, when
from emily.agents.settings import AgentsSettings
from emily.agents.state import RESET, AgentState
from emily.agents.working_memory import WorkingMemory
from emily.agents.workspace import Proposal, compete

Node = Callable[[AgentState], Awaitable[dict[str, Any]]]

# What each policy looks like from outside (the loop has no body; it says what it does).
EXPRESSIONS = {
    "rest": "settles down and conserves energy",
    "withdraw": "steps back to a safe distance",
    "approach": "turns towards the other and engages",
    "explore": "investigates what is new",
    "reflect": "pauses to think it over",
}
# How much time the steps after cognition need, kept free inside the loop deadline.
_RESERVE_S = 0.3


class MemoryLike(Protocol):
    def search(self, *args: Any, **kwargs: Any) -> list[Any]: ...

    def add(self, *args: Any, **kwargs: Any) -> int: ...


class EmbedderLike(Protocol):
    def embed(self, texts: Sequence[str]) -> Any: ...


@dataclass
class AgentDeps:
    """What the nodes use; ``*_error`` says why a dependency is missing (a degraded note)."""

    settings: AgentsSettings
    working_memory: WorkingMemory
    memory: MemoryLike | None = None
    embedder: EmbedderLike | None = None
    llm: StructuredLLM | None = None
    llm_model: str = ""
    tracer: Tracer = field(default_factory=lambda: trace.get_tracer("emily.agents"))
    memory_error: str | None = None
    llm_error: str | None = None


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _dt_s(previous: str | None, current: str) -> float:
    if not previous:
        return 0.0
    delta = datetime.fromisoformat(current) - datetime.fromisoformat(previous)
    return max(0.0, delta.total_seconds())


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def affect_policy(vad: Sequence[float]) -> str:
    """What a feeling pulls towards: fear withdraws, joy explores, warmth approaches."""
    v, a, _ = vad
    if v < -0.25:
        return "withdraw" if a > 0.1 else "reflect"
    if v > 0.25:
        return "explore" if a > 0.3 else "approach"
    return "rest" if a < 0.0 else "reflect"


class TriuneLoop:
    """Builds the graph over a set of dependencies."""

    def __init__(self, deps: AgentDeps) -> None:
        self.deps = deps
        self.settings = deps.settings

    def _traced(self, name: str, fn: Node) -> Node:
        async def node(state: AgentState) -> dict[str, Any]:
            with self.deps.tracer.start_as_current_span(
                f"agents.{name}",
                attributes={"emily.node": name, "emily.thread_id": state.get("thread_id", "")},
            ) as span:
                started = time.perf_counter()
                update = await fn(state)
                timings = dict(update.get("timings", {}))
                timings[name] = _elapsed_ms(started)
                update["timings"] = timings
                for note in update.get("notes", []):
                    if note != RESET:
                        span.add_event("degraded", {"emily.note": note})
                return update

        node.__name__ = name
        return node

    def build(self) -> StateGraph[AgentState]:
        graph: StateGraph[AgentState] = StateGraph(AgentState)
        for name, fn in (
            ("perceive", self.perceive),
            ("recall", self.recall),
            ("instinct", self.instinct),
            ("affect", self.affect),
            ("cognition", self.cognition),
            ("workspace", self.workspace),
            ("act", self.act),
            ("consolidate", self.consolidate),
        ):
            # The wrapped coroutine's type is wider than LangGraph's node protocols spell out.
            graph.add_node(name, self._traced(name, fn))  # type: ignore[call-overload]
        graph.add_edge(START, "perceive")
        graph.add_edge("perceive", "recall")
        for layer in ("instinct", "affect", "cognition"):
            graph.add_edge("recall", layer)
        graph.add_edge(["instinct", "affect", "cognition"], "workspace")
        graph.add_edge("workspace", "act")
        graph.add_edge("act", "consolidate")
        graph.add_edge("consolidate", END)
        return graph

    # --- nodes -----------------------------------------------------------------------------

    async def perceive(self, state: AgentState) -> dict[str, Any]:
        stimulus = Stimulus.model_validate(state["stimulus"])
        cues = features(stimulus)
        notes: list[str] = []
        embedding: list[float] | None = None
        if self.deps.embedder is not None:
            try:
                vectors = await asyncio.wait_for(
                    asyncio.to_thread(self.deps.embedder.embed, [stimulus.text]),
                    self.settings.memory_timeout_s,
                )
                embedding = [float(x) for x in np.asarray(vectors)[0]]
            except Exception as exc:
                notes.append(f"embedder: {_short(exc)}")
        return {
            "occurred_at": when(stimulus, datetime.now(UTC)).isoformat(),
            "features": cues,
            "salience": salience(cues),
            "embedding": embedding,
            "recalled": [],
            "cognition": None,
            "episode_id": None,
            "notes": [RESET, *notes],
            "timings": {RESET: 1.0},
        }

    async def _search(self, **kwargs: Any) -> list[Any]:
        memory = self.deps.memory
        assert memory is not None
        return await asyncio.wait_for(
            asyncio.to_thread(lambda: memory.search(**kwargs)), self.settings.memory_timeout_s
        )

    async def recall(self, state: AgentState) -> dict[str, Any]:
        if not self.settings.memory_enabled:
            return {}
        if self.deps.memory is None:
            return {"notes": [f"memory: {self.deps.memory_error or 'unavailable'}"]}
        k = self.settings.recall_k
        mood = state.get("mood") or [0.0, 0.0, 0.0]
        text = state["stimulus"]["text"]
        embedding = state.get("embedding")
        try:
            semantic, affective = await asyncio.gather(
                self._search(
                    query_text=None if embedding else text,
                    query_vector=embedding,
                    mode="semantic",
                    k=k,
                ),
                self._search(affect=list(mood), mode="affective", k=k),
            )
        except Exception as exc:
            return {"notes": [f"memory: recall failed ({_short(exc)})"]}
        recalled = [
            {
                "id": r.id,
                "mode": mode,
                "content": r.content[:300],
                "similarity": float(r.similarity),
                "affect": [float(x) for x in r.affect.as_list()],
            }
            for mode, results in (("semantic", semantic), ("affective", affective))
            for r in results
        ]
        update: dict[str, Any] = {"recalled": recalled}
        if semantic:
            # What memory already knows well is less novel than the words alone suggest.
            familiarity = max(float(r.similarity) for r in semantic)
            cues = dict(state["features"])
            if state["stimulus"].get("novelty") is None:
                cues["novelty"] = max(
                    0.0, min(1.0, 0.5 * cues["novelty"] + 0.5 * (1 - familiarity))
                )
            update["features"] = cues
            update["salience"] = salience(cues)
        return update

    async def instinct(self, state: AgentState) -> dict[str, Any]:
        drives = drv.drives_from_dict(state.get("drives"))
        dt = _dt_s(state.get("last_at"), state["occurred_at"])
        drives = drv.update_drives(drives, state["features"], dt)
        reflex = drv.reflex(drives)
        threat = state["features"].get("threat", 0.0)
        proposal = Proposal(
            "instinct",
            reflex.policy,
            confidence=0.6 + 0.4 * threat,
            urgency=max(reflex.urgency, 0.1),
            rationale=f"{reflex.drive} deficit",
        )
        return {
            "instinct": {"proposal": asdict(proposal), "deficits": reflex.deficits},
            "drives": drv.drives_to_dict(drives),
        }

    async def affect(self, state: AgentState) -> dict[str, Any]:
        cues = state["features"]
        stimulus_vad = np.array([cues["valence"], cues["arousal"], cues["dominance"]])
        remembered = [r["affect"] for r in state.get("recalled", []) if r["mode"] == "semantic"]
        if remembered:
            # Emotional memory: how similar episodes felt colours how this one feels.
            stimulus_vad = 0.8 * stimulus_vad + 0.2 * np.mean(np.array(remembered), axis=0)
        dt = _dt_s(state.get("last_at"), state["occurred_at"])
        new_state, net = opp.step(
            opp.OpponentState.from_dict(state.get("opponent")), stimulus_vad, dt_s=dt
        )
        mood = opp.mood(state.get("mood") or [0.0, 0.0, 0.0], net)
        vad = [float(x) for x in net]
        proposal = Proposal(
            "affect",
            affect_policy(vad),
            confidence=0.5 + 0.5 * abs(vad[0]),
            urgency=min(1.0, float(np.linalg.norm(net)) / math.sqrt(3) * 1.5),
            rationale="felt " + ", ".join(f"{x:+.2f}" for x in vad),
        )
        return {
            "affect": {"vad": vad, "proposal": asdict(proposal)},
            "opponent": new_state.as_dict(),
            "mood": [float(x) for x in mood],
        }

    async def cognition(self, state: AgentState) -> dict[str, Any]:
        if not self.settings.cognition_enabled:
            return {"cognition": None}
        if self.deps.llm is None:
            return {"notes": [f"cognition: {self.deps.llm_error or 'no LLM configured'}"]}
        budget = min(
            self.settings.cognition_deadline_s,
            state.get("deadline_at", math.inf) - time.time() - _RESERVE_S,
        )
        if budget < 0.05:
            return {"notes": ["cognition: no time left before the loop deadline"]}
        messages = messages_for(
            state["stimulus"]["text"],
            state.get("mood") or [0.0, 0.0, 0.0],
            [r["content"] for r in state.get("recalled", []) if r["mode"] == "semantic"],
        )
        try:
            outcome = await asyncio.wait_for(
                deliberate(
                    self.deps.llm,
                    messages,
                    urgency=state["salience"],
                    max_tokens=self.settings.cognition_max_tokens,
                    deadline_s=budget,
                    tracer=self.deps.tracer,
                    model_hint=self.deps.llm_model,
                ),
                budget + 0.1,
            )
        except TimeoutError:
            return {"notes": [f"cognition: deadline of {budget:.2f} s exceeded"]}
        except Exception as exc:
            return {"notes": [f"cognition: {_short(exc)}"]}
        return {
            "cognition": outcome.model_dump(mode="json"),
            "timings": {"llm": outcome.latency_ms},
        }

    async def workspace(self, state: AgentState) -> dict[str, Any]:
        proposals = [
            Proposal(**state["instinct"]["proposal"]),
            Proposal(**state["affect"]["proposal"]),
        ]
        cognition = state.get("cognition")
        if cognition:
            proposals.extend(Proposal(**p) for p in cognition["proposals"])
        drives = drv.drives_from_dict(state.get("drives"))
        s = self.settings
        decision = compete(
            proposals,
            world.model_for(drives),
            world.belief(state["features"]),
            {
                "instinct": s.weight_instinct,
                "affect": s.weight_affect,
                "cognition": s.weight_cognition,
            },
            precision=s.precision,
        )
        result = decision.as_dict()
        result["proposals"] = [asdict(p) for p in proposals]
        note = await self.deps.working_memory.broadcast(
            state["thread_id"],
            {
                "turn": state.get("turn", 0) + 1,
                "winner": decision.winner.layer,
                "winner_policy": decision.winner.policy,
                "policy": decision.policy,
                "layer": decision.layer,
                "salience": state["salience"],
            },
        )
        return {"decision": result, "notes": [note] if note else []}

    async def act(self, state: AgentState) -> dict[str, Any]:
        decision = state["decision"]
        predicted = decision["predicted_outcomes"]
        action = {
            "policy": decision["policy"],
            "expression": EXPRESSIONS[decision["policy"]],
            "expected_outcome": max(predicted, key=predicted.get),
            "outcome_probability": max(predicted.values()),
        }
        note = await self.deps.working_memory.remember(
            state["thread_id"],
            {
                "turn": state.get("turn", 0) + 1,
                "stimulus": state["stimulus"]["text"][:500],
                "policy": decision["policy"],
                "affect": state["affect"]["vad"],
                "mood": state.get("mood"),
                "drives": {k: v["level"] for k, v in (state.get("drives") or {}).items()},
            },
        )
        drives = drv.satisfy(drv.drives_from_dict(state.get("drives")), decision["policy"])
        return {
            "action": action,
            "drives": drv.drives_to_dict(drives),
            "notes": [note] if note else [],
        }

    async def consolidate(self, state: AgentState) -> dict[str, Any]:
        turn = state.get("turn", 0) + 1
        notes = list(state.get("notes", []))
        action = state["action"]
        episode_id: int | None = None
        new_notes: list[str] = []
        if self.settings.memory_enabled and self.deps.memory is not None:
            from emily.memory.models import Episode

            episode = Episode(
                content=state["stimulus"]["text"],
                occurred_at=datetime.fromisoformat(state["occurred_at"]),
                affect=[max(-1.0, min(1.0, x)) for x in state["affect"]["vad"]],
                context={
                    "thread_id": state["thread_id"],
                    "turn": turn,
                    "source": state["stimulus"].get("source", "user"),
                    "policy": action["policy"],
                    "layer": state["decision"]["layer"],
                    "outcome": action["expected_outcome"],
                    "degraded": bool(notes),
                },
                embedding=state.get("embedding"),
            )
            memory = self.deps.memory
            try:
                episode_id = await asyncio.wait_for(
                    asyncio.to_thread(lambda: memory.add(episode)), self.settings.memory_timeout_s
                )
            except Exception as exc:
                new_notes.append(f"memory: consolidate failed ({_short(exc)})")
        summary = {
            "turn": turn,
            "at": state["occurred_at"],
            "stimulus": state["stimulus"]["text"][:200],
            "policy": action["policy"],
            "layer": state["decision"]["layer"],
            "winner": state["decision"]["winner"]["layer"],
            "affect": state["affect"]["vad"],
            "degraded": bool(notes or new_notes),
            "notes": [*notes, *new_notes],
            "episode_id": episode_id,
        }
        history = [*state.get("history", []), summary][-self.settings.history_limit :]
        return {
            "episode_id": episode_id,
            "turn": turn,
            "last_at": state["occurred_at"],
            "history": history,
            "notes": new_notes,
        }
