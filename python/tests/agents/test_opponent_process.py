from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from emily.agents import opponent_process as opp

unit = st.floats(-1, 1, allow_nan=False)
vad = st.tuples(unit, unit, unit)


@given(st.lists(vad, min_size=1, max_size=40), st.floats(0, 10_000))
def test_affect_stays_within_bounds(stimuli: list[tuple[float, float, float]], dt: float) -> None:
    state = opp.OpponentState()
    for s in stimuli:
        state, net = opp.step(state, list(s), dt_s=dt)
        assert np.all(net >= -1.0) and np.all(net <= 1.0)
        assert all(0.0 <= g <= 1.0 for g in state.gain)


@given(st.floats(0.05, 1.0), st.integers(3, 30))
def test_repeated_identical_stimulus_habituates(intensity: float, repeats: int) -> None:
    state = opp.OpponentState()
    responses = []
    for _ in range(repeats):
        state, net = opp.step(state, [intensity, 0.0, 0.0])
        responses.append(net[0])
    assert all(later <= earlier + 1e-12 for earlier, later in itertools.pairwise(responses))
    assert responses[-1] < responses[0]
    assert responses[-1] > 0  # the b-process opposes, it never reverses the primary response


@given(st.floats(0.2, 1.0), st.integers(3, 20))
def test_withdrawal_leaves_an_opposite_after_reaction(intensity: float, repeats: int) -> None:
    state = opp.OpponentState()
    for _ in range(repeats):
        state, _ = opp.step(state, [intensity, 0.0, 0.0])
    _, after = opp.step(state, [0.0, 0.0, 0.0])
    assert after[0] < 0


def test_exposure_strengthening_decays_with_time() -> None:
    state = opp.OpponentState()
    for _ in range(10):
        state, _ = opp.step(state, [1.0, 1.0, 1.0])
    strengthened = state.gain[0]
    rested = opp.relax(state, 10 * 86_400, opp.OpponentParams())
    assert strengthened > opp.OpponentParams().gain0
    assert abs(rested.gain[0] - opp.OpponentParams().gain0) < 1e-3
    assert abs(rested.b[0]) < 1e-6
    assert opp.relax(state, 0, opp.OpponentParams()) is state


def test_state_round_trips_through_json_values() -> None:
    state, _ = opp.step(opp.OpponentState(), [0.5, -0.2, 0.1])
    assert opp.OpponentState.from_dict(state.as_dict()) == state
    assert opp.OpponentState.from_dict(None) == opp.OpponentState()


@given(vad, vad)
def test_mood_moves_towards_affect_and_stays_bounded(
    previous: tuple[float, float, float], affect: tuple[float, float, float]
) -> None:
    m = opp.mood(list(previous), list(affect))
    assert np.all(np.abs(m) <= 1.0)
    assert np.all(np.abs(m - np.array(affect)) <= np.abs(np.array(previous) - affect) + 1e-12)
