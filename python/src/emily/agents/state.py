"""The graph's typed state: one ``TypedDict`` per layer's output, all plain JSON values.

LangGraph checkpoints the state after every step (``durability``), so everything here is a
``TypedDict`` of JSON types: a checkpoint is a plain JSON-like document, readable by any later
version, and mypy checks every key a node reads or writes. Dependencies and deadlines are not
state: they come with each run through ``emily.agents.context.TurnContext``.

Fields written by several nodes of one turn (notes, timings) merge through reducers; the first
node of a turn resets them with the ``RESET`` marker so they never leak into the next turn.
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired, TypedDict

from emily.features.rows import WindowEpisode

RESET = "__reset__"

LayerName = Literal["instinct", "affect", "cognition"]
RecallMode = Literal["semantic", "affective"]


def turn_notes(left: list[str] | None, right: list[str] | None) -> list[str]:
    right = right or []
    if right and right[0] == RESET:
        return list(right[1:])
    return [*(left or []), *right]


def turn_timings(left: dict[str, float] | None, right: dict[str, float] | None) -> dict[str, float]:
    right = right or {}
    if RESET in right:
        return {k: v for k, v in right.items() if k != RESET}
    return {**(left or {}), **right}


class StimulusData(TypedDict):
    """``Stimulus.model_dump(mode="json", exclude_none=True)``: only ``text`` is always there."""

    text: str
    at: NotRequired[str]
    source: NotRequired[str]
    threat: NotRequired[float]
    social: NotRequired[float]
    novelty: NotRequired[float]
    reward: NotRequired[float]
    valence: NotRequired[float]
    arousal: NotRequired[float]
    dominance: NotRequired[float]
    ratings: NotRequired[list[int]]


class RecalledEpisode(TypedDict):
    id: int
    mode: RecallMode
    content: str
    similarity: float
    affect: list[float]


class ProposalData(TypedDict):
    """``dataclasses.asdict`` of ``emily.agents.workspace.Proposal``."""

    layer: str
    policy: str
    confidence: float
    urgency: float
    rationale: str


class InstinctOutput(TypedDict):
    proposal: ProposalData
    deficits: dict[str, float]


class AffectOutput(TypedDict):
    vad: list[float]
    proposal: ProposalData


class CognitionOutput(TypedDict):
    proposals: list[ProposalData]
    appraisal: str
    model: str
    backend: str
    prompt: str
    input_tokens: int
    output_tokens: int
    latency_ms: float


class Decision(TypedDict):
    """The workspace's choice (``WorkspaceDecision``) and every proposal it weighed."""

    policy: str
    layer: str
    winner: ProposalData
    saliences: list[float]
    candidates: list[str]
    free_energy: dict[str, dict[str, float]]
    posterior: dict[str, float]
    predicted_outcomes: dict[str, float]
    proposals: list[ProposalData]


class Action(TypedDict):
    policy: str
    expression: str
    expected_outcome: str
    outcome_probability: float


class DriveData(TypedDict):
    level: float
    set_point: float
    drift_per_hour: float
    weight: float


class OpponentData(TypedDict):
    a: list[float]
    b: list[float]
    gain: list[float]


class HistoryEntry(TypedDict):
    """One completed turn, as kept in the thread (newest last, ``history_limit`` long)."""

    turn: int
    at: str
    stimulus: str
    policy: str
    layer: str
    winner: str
    affect: list[float]
    degraded: bool
    notes: list[str]
    episode_id: int | None


class OnlineFeatureData(TypedDict):
    """The thread's online features read by perceive (``emily.features.client.OnlineFeatures``):
    values by ``view:feature`` (``None``: missing), and which views had no usable value."""

    values: dict[str, float | int | None]
    missing: list[str]
    stale: list[str]
    future: list[str]
    age_s: dict[str, float]


class AgentState(TypedDict, total=False):
    # input of a turn
    thread_id: str
    stimulus: StimulusData
    # perception
    occurred_at: str
    features: dict[str, float]  # the cues of ``perception.CUES``
    salience: float
    embedding: list[float] | None
    appraised_by: str  # what estimated the valence: "emily-appraisal/3", "anchor", "words"
    appraised_valence: float | None  # the appraiser's own valence (before any fusion)
    online_features: OnlineFeatureData | None
    # recall
    recalled: list[RecalledEpisode]
    # the three layers
    instinct: InstinctOutput
    affect: AffectOutput
    cognition: CognitionOutput | None
    # decision and its consequences
    decision: Decision
    action: Action
    episode_id: int | None
    notes: Annotated[list[str], turn_notes]
    timings: Annotated[dict[str, float], turn_timings]
    # carried across turns of a thread
    turn: int
    last_at: str | None
    opponent: OpponentData
    mood: list[float]
    drives: dict[str, DriveData]
    history: list[HistoryEntry]
    feature_window: list[WindowEpisode]  # the thread's last stored episodes (feature windows)


def next_turn(state: AgentState) -> int:
    """The number of the turn in progress (``turn`` counts completed turns)."""
    return state.get("turn", 0) + 1
