"""The nodes of the triune loop: plain functions of the typed state and the run's context.

``perceive → recall → (instinct ∥ affect ∥ cognition) → workspace → act → consolidate``

Nodes never raise for a failing dependency: they add a note ("cognition: DeadlineExceeded ...")
and the turn goes on with what the lower layers offer; a turn with notes is degraded. The one
exception is a turn that must store its episode (``TurnContext.require_episode``): consolidate
raises ``EpisodeNotStoredError`` and the caller rolls the turn back. Every wait on a dependency is
bounded by what is left of the turn's deadline (``TurnContext.budget_s``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from langgraph.runtime import Runtime

from emily.agents import drives as drv
from emily.agents import opponent_process as opp
from emily.agents import world
from emily.agents.cognition import deliberate
from emily.agents.context import RESERVE_S, TurnContext
from emily.agents.errors import EpisodeNotStoredError
from emily.agents.perception import (
    Appraisal,
    Stimulus,
    checked_appraisal,
    features,
    salience,
    when,
)
from emily.agents.state import (
    RESET,
    AgentState,
    CognitionOutput,
    Decision,
    HistoryEntry,
    OnlineFeatureData,
    RecalledEpisode,
    RecallMode,
    next_turn,
)
from emily.agents.workspace import Proposal, compete
from emily.features.rows import (
    WindowEpisode,
    add_to_window,
    stimulus_row,
    thread_row,
    window_episode,
)
from emily.features.schema import STIMULUS_PUSH, THREAD_PUSH

# What each policy looks like from outside (the loop has no body; it says what it does).
EXPRESSIONS = {
    "rest": "settles down and conserves energy",
    "withdraw": "steps back to a safe distance",
    "approach": "turns towards the other and engages",
    "explore": "investigates what is new",
    "reflect": "pauses to think it over",
}
NEUTRAL = [0.0, 0.0, 0.0]
# Below this a wait is not worth starting: the answer could not arrive in time.
_MIN_WAIT_S = 0.02


def short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _dt_s(previous: str | None, current: str) -> float:
    if not previous:
        return 0.0
    delta = datetime.fromisoformat(current) - datetime.fromisoformat(previous)
    return max(0.0, delta.total_seconds())


def affect_policy(vad: Sequence[float]) -> str:
    """What a feeling pulls towards: fear withdraws, joy explores, warmth approaches."""
    v, a, _ = vad
    if v < -0.25:
        return "withdraw" if a > 0.1 else "reflect"
    if v > 0.25:
        return "explore" if a > 0.3 else "approach"
    return "rest" if a < 0.0 else "reflect"


async def _bounded(ctx: TurnContext, what: str, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a worker thread within the memory timeout and the turn's deadline."""
    budget = ctx.budget_s(ctx.settings.memory_timeout_s, RESERVE_S)
    if budget < _MIN_WAIT_S:
        raise TimeoutError(f"no time left for {what} before the loop deadline")
    return await asyncio.wait_for(asyncio.to_thread(fn, *args), budget)


async def perceive(state: AgentState, runtime: Runtime[TurnContext]) -> AgentState:
    ctx = runtime.context
    stimulus = Stimulus.model_validate(state["stimulus"])
    notes: list[str] = []
    embedding: list[float] | None = None
    embedder = ctx.deps.embedder
    if embedder is not None:
        try:
            vectors = await _bounded(ctx, "the embedder", embedder.embed, [stimulus.text])
            embedding = [float(x) for x in np.asarray(vectors)[0]]
        except Exception as exc:
            notes.append(f"embedder: {short(exc)}")
    appraised: dict[str, float] | None = None
    appraised_by = "words"
    if ctx.appraiser is not None:
        try:
            raw = await _bounded(ctx, "the appraiser", ctx.appraiser, stimulus.text, embedding)
            if isinstance(raw, Appraisal):
                appraised = checked_appraisal(raw.values)
                appraised_by = raw.source
                if raw.degraded:
                    notes.append(f"appraiser: {raw.degraded}")
            else:
                appraised, appraised_by = checked_appraisal(raw), "appraiser"
        except Exception as exc:
            notes.append(f"appraiser: {short(exc)}")
    cues = features(stimulus, appraised)
    occurred_at = when(stimulus, datetime.now(UTC))
    online, note = await _read_features(ctx, state["thread_id"], stimulus, occurred_at, cues)
    if note:
        notes.append(note)
    return {
        "occurred_at": occurred_at.isoformat(),
        "features": cues,
        "salience": salience(cues),
        "embedding": embedding,
        "appraised_by": appraised_by,
        "appraised_valence": appraised.get("valence") if appraised else None,
        "online_features": online,
        "recalled": [],
        "cognition": None,
        "episode_id": None,
        "notes": [RESET, *notes],
        "timings": {RESET: 1.0},
    }


async def _read_features(
    ctx: TurnContext,
    thread_id: str,
    stimulus: Stimulus,
    at: datetime,
    cues: dict[str, float],
) -> tuple[OnlineFeatureData | None, str | None]:
    """The thread's online features under the read deadline; ``(None, note)`` when they could
    not be read (the turn goes on without them, degraded)."""
    client = ctx.deps.features
    if client is None:
        error = ctx.deps.features_error
        return None, (f"features: {error}" if error else None)
    budget = ctx.budget_s(client.settings.features.read_deadline_s, RESERVE_S)
    if budget < _MIN_WAIT_S:
        return None, "features: no time left before the loop deadline"
    vad = [cues["valence"], cues["arousal"], cues["dominance"]]
    try:
        online = await client.read(
            thread_id, stimulus.source, at=at, stimulus_vad=vad, deadline_s=budget
        )
    except Exception as exc:
        return None, f"features: read failed ({short(exc)})"
    return OnlineFeatureData(
        values=online.values,
        missing=online.missing,
        stale=online.stale,
        future=online.future,
        age_s=online.age_s,
    ), None


async def _search(ctx: TurnContext, **kwargs: Any) -> list[Any]:
    memory = ctx.deps.memory
    assert memory is not None
    result: list[Any] = await _bounded(ctx, "recall", lambda: memory.search(**kwargs))
    return result


async def recall(state: AgentState, runtime: Runtime[TurnContext]) -> AgentState:
    ctx = runtime.context
    if not ctx.settings.memory_enabled:
        return {}
    if ctx.deps.memory is None:
        return {"notes": [f"memory: {ctx.deps.memory_error or 'unavailable'}"]}
    k = ctx.settings.recall_k
    mood = state.get("mood") or NEUTRAL
    embedding = state.get("embedding")
    try:
        semantic, affective = await asyncio.gather(
            _search(
                ctx,
                query_text=None if embedding else state["stimulus"]["text"],
                query_vector=embedding,
                mode="semantic",
                k=k,
            ),
            _search(ctx, affect=list(mood), mode="affective", k=k),
        )
    except Exception as exc:
        return {"notes": [f"memory: recall failed ({short(exc)})"]}
    modes: tuple[tuple[RecallMode, list[Any]], ...] = (
        ("semantic", semantic),
        ("affective", affective),
    )
    recalled = [
        RecalledEpisode(
            id=int(r.id),
            mode=mode,
            content=r.content[:300],
            similarity=float(r.similarity),
            affect=[float(x) for x in r.affect.as_list()],
        )
        for mode, results in modes
        for r in results
    ]
    update: AgentState = {"recalled": recalled}
    if semantic:
        # What memory already knows well is less novel than the words alone suggest.
        familiarity = max(float(r.similarity) for r in semantic)
        cues = dict(state["features"])
        if state["stimulus"].get("novelty") is None:
            cues["novelty"] = max(0.0, min(1.0, 0.5 * cues["novelty"] + 0.5 * (1 - familiarity)))
        update["features"] = cues
        update["salience"] = salience(cues)
    return update


async def instinct(state: AgentState, runtime: Runtime[TurnContext]) -> AgentState:
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
        "instinct": {"proposal": proposal.data(), "deficits": reflex.deficits},
        "drives": drv.drives_to_dict(drives),
    }


async def affect(state: AgentState, runtime: Runtime[TurnContext]) -> AgentState:
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
    mood = opp.mood(state.get("mood") or NEUTRAL, net)
    vad = [float(x) for x in net]
    proposal = Proposal(
        "affect",
        affect_policy(vad),
        confidence=0.5 + 0.5 * abs(vad[0]),
        urgency=min(1.0, float(np.linalg.norm(net)) / math.sqrt(3) * 1.5),
        rationale="felt " + ", ".join(f"{x:+.2f}" for x in vad),
    )
    return {
        "affect": {"vad": vad, "proposal": proposal.data()},
        "opponent": new_state.as_dict(),
        "mood": [float(x) for x in mood],
    }


async def cognition(state: AgentState, runtime: Runtime[TurnContext]) -> AgentState:
    ctx = runtime.context
    if not ctx.settings.cognition_enabled:
        return {"cognition": None}
    llm = ctx.deps.llm
    if llm is None:
        return {"notes": [f"cognition: {ctx.deps.llm_error or 'no LLM configured'}"]}
    budget = ctx.cognition_budget_s()
    if budget < 0.05:
        return {"notes": ["cognition: no time left before the loop deadline"]}
    try:
        prompt = ctx.prompt()
        messages = prompt.messages(
            state["stimulus"]["text"],
            state.get("mood") or NEUTRAL,
            [r["content"] for r in state.get("recalled", []) if r["mode"] == "semantic"],
        )
    except Exception as exc:
        return {"notes": [f"cognition: no usable prompt ({short(exc)})"]}
    try:
        outcome = await asyncio.wait_for(
            deliberate(
                llm,
                messages,
                urgency=state["salience"],
                max_tokens=ctx.settings.cognition_max_tokens,
                deadline_s=budget,
                tracer=ctx.deps.tracer,
                model_hint=ctx.deps.llm_model,
                prompt_version=prompt.version,
            ),
            budget + 0.1,
        )
    except TimeoutError:
        return {"notes": [f"cognition: deadline of {budget:.2f} s exceeded"]}
    except Exception as exc:
        return {"notes": [f"cognition: {short(exc)}"]}
    output = CognitionOutput(
        proposals=[p.data() for p in outcome.proposals],
        appraisal=outcome.appraisal,
        model=outcome.model,
        backend=outcome.backend,
        prompt=outcome.prompt,
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
        latency_ms=outcome.latency_ms,
    )
    return {"cognition": output, "timings": {"llm": outcome.latency_ms}}


async def workspace(state: AgentState, runtime: Runtime[TurnContext]) -> AgentState:
    ctx = runtime.context
    proposals = [
        Proposal.of(state["instinct"]["proposal"]),
        Proposal.of(state["affect"]["proposal"]),
    ]
    thought = state.get("cognition")
    if thought:
        proposals.extend(Proposal.of(p) for p in thought["proposals"])
    drives = drv.drives_from_dict(state.get("drives"))
    s = ctx.settings
    decision = compete(
        proposals,
        world.model_for(drives),
        world.belief(state["features"]),
        {"instinct": s.weight_instinct, "affect": s.weight_affect, "cognition": s.weight_cognition},
        precision=s.precision,
    )
    note = await ctx.deps.working_memory.broadcast(
        state["thread_id"],
        {
            "turn": next_turn(state),
            "winner": decision.winner.layer,
            "winner_policy": decision.winner.policy,
            "policy": decision.policy,
            "layer": decision.layer,
            "salience": state["salience"],
        },
    )
    return {"decision": decision.data(proposals), "notes": [note] if note else []}


async def act(state: AgentState, runtime: Runtime[TurnContext]) -> AgentState:
    ctx = runtime.context
    decision = state["decision"]
    predicted = decision["predicted_outcomes"]
    expected = max(predicted, key=lambda outcome: predicted[outcome])
    drives_now = state.get("drives") or {}
    note = await ctx.deps.working_memory.remember(
        state["thread_id"],
        {
            "turn": next_turn(state),
            "stimulus": state["stimulus"]["text"][:500],
            "policy": decision["policy"],
            "affect": state["affect"]["vad"],
            "mood": state.get("mood"),
            "drives": {name: d["level"] for name, d in drives_now.items()},
        },
    )
    drives = drv.satisfy(drv.drives_from_dict(state.get("drives")), decision["policy"])
    return {
        "action": {
            "policy": decision["policy"],
            "expression": EXPRESSIONS[decision["policy"]],
            "expected_outcome": expected,
            "outcome_probability": predicted[expected],
        },
        "drives": drv.drives_to_dict(drives),
        "notes": [note] if note else [],
    }


async def _store_episode(state: AgentState, ctx: TurnContext, degraded: bool) -> int:
    """Store the turn's episode; raises if it was not stored.

    The write is awaited to its end, never abandoned at a timeout: a write cancelled from here
    could still commit in its worker thread, and the turn would then report a failure for an
    episode that exists. The store's own statement timeout bounds it instead."""
    from emily.memory.models import Episode

    memory = ctx.deps.memory
    assert memory is not None
    decision, action = state["decision"], state["action"]
    episode = Episode(
        content=state["stimulus"]["text"],
        occurred_at=datetime.fromisoformat(state["occurred_at"]),
        affect=[max(-1.0, min(1.0, x)) for x in state["affect"]["vad"]],
        context={
            "thread_id": state["thread_id"],
            "turn": next_turn(state),
            "source": state["stimulus"].get("source", "user"),
            "policy": action["policy"],
            "layer": decision["layer"],
            "outcome": action["expected_outcome"],
            "degraded": degraded,
            "confidence": _confidence(decision),
            "appraised_by": state.get("appraised_by", "words"),
            **_appraisal_outcome(state, ctx),
        },
        embedding=state.get("embedding"),
    )
    # A turn resumed after a crash may have stored its episode already (the crash came between
    # the commit and the checkpoint, and the resumed turn perceived again at another moment, so
    # the idempotency key differs): one episode per (thread, turn), whatever ran twice.
    turn_key = {"thread_id": state["thread_id"], "turn": next_turn(state)}
    stored = await asyncio.to_thread(memory.episode_with, turn_key)
    episode_id = stored if stored is not None else int(await asyncio.to_thread(memory.add, episode))
    ctx.receipt.episode_id = episode_id
    return episode_id


def _appraisal_outcome(state: AgentState, ctx: TurnContext) -> dict[str, Any]:
    """What monitoring and the A/B test read from an episode: the appraiser's own valence, the
    stimulus's human valence when it was rated, the absolute error between them (the outcome
    metric), and the thread's A/B arm. Keys are left out when there is nothing to say."""
    out: dict[str, Any] = {}
    predicted = state.get("appraised_valence")
    ratings = state["stimulus"].get("ratings")
    if predicted is not None:
        out["appraised_valence"] = round(float(predicted), 6)
    if ratings:
        out["ratings"] = list(ratings)
        human = sum(ratings) / len(ratings) / 4.0
        out["human_valence"] = round(human, 6)
        if predicted is not None:
            out["appraisal_error"] = round(abs(float(predicted) - human), 6)
    if ctx.ab is not None:
        out["ab_experiment"], out["ab_arm"] = ctx.ab.experiment, ctx.ab.arm
    return out


def _confidence(decision: Decision) -> float:
    """How sure the workspace was of its choice: the chosen policy's posterior probability."""
    return round(float(decision["posterior"].get(decision["policy"], 0.0)), 6)


async def _push_features(
    state: AgentState, ctx: TurnContext, episode_id: int, degraded: bool
) -> tuple[list[WindowEpisode], str | None]:
    """After the episode is committed: the thread's feature window with it, and its rows pushed
    online (the offline store already has them: it is the episodes table)."""
    decision = state["decision"]
    item = window_episode(
        episode_id=episode_id,
        at=datetime.fromisoformat(state["occurred_at"]),
        affect=state["affect"]["vad"],
        degraded=degraded,
        layer=decision["layer"],
        confidence=_confidence(decision),
        turn=next_turn(state),
    )
    window = add_to_window(state.get("feature_window", []), item)
    client = ctx.deps.features
    if client is None:
        return window, None
    budget = ctx.budget_s(client.settings.features.push_deadline_s)
    if budget < _MIN_WAIT_S:
        return window, "features: no time left to push before the loop deadline"
    rows = {
        THREAD_PUSH.name: [thread_row(state["thread_id"], window, item)],
        STIMULUS_PUSH.name: [stimulus_row(state["stimulus"].get("source", "user"), item)],
    }
    try:
        await client.push_many(rows, deadline_s=budget)
    except Exception as exc:
        return window, f"features: push failed ({short(exc)})"
    return window, None


async def consolidate(state: AgentState, runtime: Runtime[TurnContext]) -> AgentState:
    ctx = runtime.context
    notes = list(state.get("notes", []))
    new_notes: list[str] = []
    episode_id: int | None = None
    if ctx.settings.memory_enabled:
        failure: str | None = None
        if ctx.deps.memory is None:
            failure = f"memory: {ctx.deps.memory_error or 'unavailable'}"
        else:
            try:
                episode_id = await _store_episode(state, ctx, bool(notes))
            except Exception as exc:
                failure = f"memory: consolidate failed ({short(exc)})"
        if failure is not None:
            if ctx.require_episode:
                raise EpisodeNotStoredError(f"the episode was not stored ({failure})")
            new_notes.append(failure)
    update: AgentState = {}
    if episode_id is not None:
        window, note = await _push_features(state, ctx, episode_id, bool(notes))
        update["feature_window"] = window
        if note:
            new_notes.append(note)
    decision = state["decision"]
    summary = HistoryEntry(
        turn=next_turn(state),
        at=state["occurred_at"],
        stimulus=state["stimulus"]["text"][:200],
        policy=state["action"]["policy"],
        layer=decision["layer"],
        winner=decision["winner"]["layer"],
        affect=state["affect"]["vad"],
        degraded=bool(notes or new_notes),
        notes=[*notes, *new_notes],
        episode_id=episode_id,
    )
    history = [*state.get("history", []), summary][-ctx.settings.history_limit :]
    return {
        **update,
        "episode_id": episode_id,
        "turn": next_turn(state),
        "last_at": state["occurred_at"],
        "history": history,
        "notes": new_notes,
    }
