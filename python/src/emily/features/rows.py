"""The push rows of one stored episode, computed in Python exactly as the source views compute
them in SQL (``emily.features.database``), so what the agent pushes online equals what a
materialization from the offline store writes (a test compares the two).

The thread row is a window over the thread's stored episodes: the agent keeps the last
``WINDOW`` of them in its state (:class:`WindowEpisode`), in the views' order ``(occurred_at,
id)``. V/A/D are rounded to float32, the precision of the episodes' ``vector(3)`` column.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict

from emily.features.schema import STIMULUS_PUSH, THREAD_PUSH, WINDOW


class WindowEpisode(TypedDict):
    """One stored episode of a thread, as the feature windows need it (JSON values: it is
    checkpointed with the agent's state)."""

    episode_id: int
    at: str
    valence: float
    arousal: float
    dominance: float
    degraded: bool
    layer: str
    confidence: float | None
    turn: int


def float32(value: float) -> float:
    """``value`` as PostgreSQL's ``real`` stores it (round to nearest float32)."""
    result: float = struct.unpack("<f", struct.pack("<f", value))[0]
    return result


def window_episode(
    *,
    episode_id: int,
    at: datetime,
    affect: Sequence[float],
    degraded: bool,
    layer: str,
    confidence: float | None,
    turn: int,
) -> WindowEpisode:
    v, a, d = (float32(max(-1.0, min(1.0, float(x)))) for x in affect)
    return WindowEpisode(
        episode_id=episode_id,
        at=at.isoformat(),
        valence=v,
        arousal=a,
        dominance=d,
        degraded=degraded,
        layer=layer,
        confidence=confidence,
        turn=turn,
    )


def _order(item: WindowEpisode) -> tuple[datetime, int]:
    return datetime.fromisoformat(item["at"]), item["episode_id"]


def add_to_window(window: Sequence[WindowEpisode], item: WindowEpisode) -> list[WindowEpisode]:
    """The window with ``item`` in its place, the last ``WINDOW`` kept."""
    merged = sorted(
        [*(w for w in window if w["episode_id"] != item["episode_id"]), item], key=_order
    )
    return merged[-WINDOW:]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _var_pop(values: Sequence[float]) -> float:
    mean = _mean(values)
    return sum((x - mean) ** 2 for x in values) / len(values)


def thread_row(
    thread_id: str, window: Sequence[WindowEpisode], item: WindowEpisode
) -> dict[str, Any]:
    """The ``thread_turn_push_v1`` row of ``item``: the window up to and including it."""
    key = _order(item)
    upto = [w for w in sorted(window, key=_order) if _order(w) <= key][-WINDOW:]
    if not upto or upto[-1]["episode_id"] != item["episode_id"]:
        upto = [*upto, item][-WINDOW:]
    confidences = [w["confidence"] for w in upto if w["confidence"] is not None]
    row: dict[str, Any] = {
        THREAD_PUSH.entity.join_key: thread_id,
        THREAD_PUSH.timestamp: datetime.fromisoformat(item["at"]),
        "valence_mean_20": _mean([w["valence"] for w in upto]),
        "arousal_mean_20": _mean([w["arousal"] for w in upto]),
        "dominance_mean_20": _mean([w["dominance"] for w in upto]),
        "valence_var_20": _var_pop([w["valence"] for w in upto]),
        "arousal_var_20": _var_pop([w["arousal"] for w in upto]),
        "dominance_var_20": _var_pop([w["dominance"] for w in upto]),
        "degraded_rate_20": _mean([1.0 if w["degraded"] else 0.0 for w in upto]),
        "episodes_20": len(upto),
        "turn": item["turn"],
        "appraisal_confidence": item["confidence"],
        "appraisal_confidence_mean_20": _mean(confidences) if confidences else None,
        "cognition_rate_20": _mean([1.0 if w["layer"] == "cognition" else 0.0 for w in upto]),
    }
    return row


def stimulus_row(kind: str, item: WindowEpisode) -> dict[str, Any]:
    """The ``stimulus_push_v1`` row of ``item`` (its stimulus kind's newest episode)."""
    at = datetime.fromisoformat(item["at"])
    return {
        STIMULUS_PUSH.entity.join_key: kind,
        STIMULUS_PUSH.timestamp: at,
        "last_seen_epoch": at.timestamp(),
        "last_valence": item["valence"],
        "last_arousal": item["arousal"],
        "last_dominance": item["dominance"],
    }
