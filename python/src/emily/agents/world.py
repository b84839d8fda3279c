"""Emily's explicit generative model: four hidden situations, four outcomes, five policies.

The numbers are a hand-written prior, small enough to read: approaching keeps you in a threat,
withdrawing leads to safety, exploring leads to novelty (whose outcomes are the most uncertain,
so ambiguity penalises it unless novelty is wanted). Drive deficits reshape the preferences C,
which is how homeostasis enters the free-energy choice.
"""

from __future__ import annotations

import numpy as np

from emily.agents.active_inference import Array, GenerativeModel
from emily.agents.drives import Drive

STATES = ("safe", "threat", "social", "novel")
OUTCOMES = ("calm", "distress", "connection", "discovery")
POLICIES = ("rest", "withdraw", "approach", "explore", "reflect")

# p(o | s): columns are states.
_A = np.array(
    [
        [0.80, 0.10, 0.20, 0.15],
        [0.05, 0.80, 0.05, 0.15],
        [0.10, 0.05, 0.70, 0.05],
        [0.05, 0.05, 0.05, 0.65],
    ]
)


def _column_stochastic(rows: list[list[float]]) -> Array:
    m = np.array(rows, dtype=np.float64)
    return np.asarray(m / m.sum(axis=0, keepdims=True))


# B[π][s', s]: columns are the current state, rows the next one.
_B = np.stack(
    [
        # rest: things stay as they are; a threat partly passes by itself
        _column_stochastic(
            [
                [0.9, 0.3, 0.1, 0.1],
                [0.0, 0.6, 0.0, 0.0],
                [0.05, 0.05, 0.85, 0.0],
                [0.05, 0.05, 0.05, 0.9],
            ]
        ),
        # withdraw: back to safety from anywhere
        _column_stochastic(
            [
                [0.95, 0.8, 0.6, 0.7],
                [0.0, 0.15, 0.0, 0.0],
                [0.0, 0.0, 0.35, 0.0],
                [0.05, 0.05, 0.05, 0.3],
            ]
        ),
        # approach: towards others; approaching a threat keeps you in it
        _column_stochastic(
            [
                [0.3, 0.1, 0.05, 0.1],
                [0.05, 0.7, 0.0, 0.05],
                [0.6, 0.2, 0.9, 0.45],
                [0.05, 0.0, 0.05, 0.4],
            ]
        ),
        # explore: towards novelty
        _column_stochastic(
            [
                [0.3, 0.1, 0.1, 0.1],
                [0.05, 0.6, 0.05, 0.05],
                [0.05, 0.0, 0.45, 0.05],
                [0.6, 0.3, 0.4, 0.8],
            ]
        ),
        # reflect: mostly stay, drift a little towards safety
        _column_stochastic(
            [
                [0.85, 0.35, 0.2, 0.2],
                [0.0, 0.5, 0.0, 0.0],
                [0.05, 0.1, 0.75, 0.05],
                [0.1, 0.05, 0.05, 0.75],
            ]
        ),
    ]
)

_BASE_C = np.array([0.5, -3.0, 0.5, 0.3])


def preferences(drives: dict[str, Drive]) -> Array:
    """Log-preferences over outcomes, raised for the outcomes that relieve current deficits."""
    c = _BASE_C.copy()

    def deficit(name: str) -> float:
        drive = drives.get(name)
        return drive.deficit * drive.weight if drive is not None else 0.0

    c[0] += 2.0 * deficit("energy") + 1.0 * deficit("safety")
    c[1] -= 3.0 * deficit("safety")
    c[2] += 3.0 * deficit("social")
    c[3] += 3.0 * deficit("novelty")
    return c


def belief(features: dict[str, float]) -> Array:
    """``q(s)`` from perceived cues (a soft observation of the situation)."""
    threat = features.get("threat", 0.0)
    social = features.get("social", 0.0)
    novelty = features.get("novelty", 0.0)
    safe = max(0.0, 1.0 - threat - 0.5 * social - 0.5 * novelty)
    weights = np.array([0.1 + safe, 0.05 + 2.0 * threat, 0.05 + social, 0.05 + novelty])
    return np.asarray(weights / weights.sum())


def model_for(drives: dict[str, Drive]) -> GenerativeModel:
    return GenerativeModel(
        states=STATES,
        outcomes=OUTCOMES,
        policies=POLICIES,
        A=_A,
        B=_B,
        C=preferences(drives),
        D=np.full(len(STATES), 1.0 / len(STATES)),
    )
