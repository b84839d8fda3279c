"""The graph's typed state. It is checkpointed after every step, so it holds plain JSON values.

Fields written by several nodes of one turn (notes, timings) merge through reducers; the first
node of a turn resets them with the ``RESET`` marker so they never leak into the next turn.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

RESET = "__reset__"


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


class AgentState(TypedDict, total=False):
    # input of a turn
    thread_id: str
    stimulus: dict[str, Any]
    deadline_at: float
    # perception
    occurred_at: str
    features: dict[str, float]
    salience: float
    embedding: list[float] | None
    # recall
    recalled: list[dict[str, Any]]
    # the three layers
    instinct: dict[str, Any]
    affect: dict[str, Any]
    cognition: dict[str, Any] | None
    # decision and its consequences
    decision: dict[str, Any]
    action: dict[str, Any]
    episode_id: int | None
    notes: Annotated[list[str], turn_notes]
    timings: Annotated[dict[str, float], turn_timings]
    # carried across turns of a thread
    turn: int
    last_at: str | None
    opponent: dict[str, list[float]]
    mood: list[float]
    drives: dict[str, dict[str, float]]
    history: list[dict[str, Any]]
