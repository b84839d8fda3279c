"""Opponent-process affect dynamics (Solomon & Corbit, 1974) over valence, arousal, dominance.

A stimulus drives a fast *a-process* that tracks its hedonic value, and a slow *b-process* that
opposes it. The b-process's gain grows with each exposure and relaxes back with time, so a
repeated identical stimulus produces a shrinking net response (habituation) and its withdrawal
leaves an after-reaction of the opposite sign. All three channels stay in ``[-1, 1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from emily.agents.state import OpponentData

Array = NDArray[np.float64]


@dataclass(frozen=True)
class OpponentParams:
    """Rates per step; ``tau_*`` in seconds for decay across gaps between stimuli."""

    alpha_a: float = 1.0  # the a-process settles within one stimulus
    alpha_b: float = 0.25  # the b-process lags behind it
    gain0: float = 0.3  # opposing gain of a naive system
    gain_max: float = 0.9  # must stay < 1 or habituation would reverse the response sign
    gain_rate: float = 0.15  # growth of the gain per unit of a-process per exposure
    tau_b_s: float = 600.0
    tau_gain_s: float = 86_400.0


@dataclass(frozen=True)
class OpponentState:
    a: tuple[float, float, float] = (0.0, 0.0, 0.0)
    b: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gain: tuple[float, float, float] = (0.3, 0.3, 0.3)

    def as_dict(self) -> OpponentData:
        return OpponentData(a=list(self.a), b=list(self.b), gain=list(self.gain))

    @classmethod
    def from_dict(cls, data: OpponentData | None) -> OpponentState:
        if not data:
            return cls()
        return cls(_vec3(data["a"]), _vec3(data["b"]), _vec3(data["gain"]))


def _vec3(values: Array | list[float]) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in values)
    return (x, y, z)


def relax(state: OpponentState, dt_s: float, params: OpponentParams) -> OpponentState:
    """Decay the b-process and the exposure gain over a gap of ``dt_s`` seconds."""
    if dt_s <= 0:
        return state
    decay_b = math.exp(-dt_s / params.tau_b_s)
    decay_g = math.exp(-dt_s / params.tau_gain_s)
    b = np.asarray(state.b) * decay_b
    gain = params.gain0 + (np.asarray(state.gain) - params.gain0) * decay_g
    return OpponentState(state.a, _vec3(b), _vec3(gain))


def step(
    state: OpponentState,
    stimulus: Array | list[float],
    params: OpponentParams | None = None,
    dt_s: float = 0.0,
) -> tuple[OpponentState, Array]:
    """One stimulus (V, A, D in ``[-1, 1]``): returns the new state and the net affect."""
    params = params or OpponentParams()
    state = relax(state, dt_s, params)
    s = np.clip(np.asarray(stimulus, dtype=np.float64), -1.0, 1.0)
    a = np.asarray(state.a) + params.alpha_a * (s - np.asarray(state.a))
    gain = np.asarray(state.gain)
    gain = gain + params.gain_rate * np.abs(a) * (params.gain_max - gain)
    b = np.asarray(state.b) + params.alpha_b * (gain * a - np.asarray(state.b))
    net = np.clip(a - b, -1.0, 1.0)
    return OpponentState(_vec3(a), _vec3(b), _vec3(gain)), net


def mood(previous: Array | list[float], affect: Array | list[float], rate: float = 0.2) -> Array:
    """Slow exponential average of affect, used for mood-congruent recall."""
    prev = np.asarray(previous, dtype=np.float64)
    return np.asarray(np.clip(prev + rate * (np.asarray(affect) - prev), -1.0, 1.0))
