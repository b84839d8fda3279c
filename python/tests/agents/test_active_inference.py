from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from emily.agents import world
from emily.agents.active_inference import (
    GenerativeModel,
    all_free_energies,
    entropy,
    expected_free_energy,
    infer_states,
    kl_divergence,
    log_softmax,
    policy_posterior,
    softmax,
)
from emily.agents.drives import default_drives

finite = st.floats(-20, 20, allow_nan=False, allow_infinity=False)


def distributions(n: int) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float64, n, elements=st.floats(0.01, 1.0)).map(lambda x: x / x.sum())


def column_stochastic(rows: int, cols: int) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float64, (rows, cols), elements=st.floats(0.01, 1.0)).map(
        lambda m: m / m.sum(axis=0, keepdims=True)
    )


@st.composite
def models(draw: st.DrawFn) -> GenerativeModel:
    n_s = draw(st.integers(2, 4))
    n_o = draw(st.integers(2, 4))
    n_p = draw(st.integers(2, 4))
    A = draw(column_stochastic(n_o, n_s))
    B = np.stack([draw(column_stochastic(n_s, n_s)) for _ in range(n_p)])
    C = draw(arrays(np.float64, n_o, elements=finite))
    return GenerativeModel(
        tuple(f"s{i}" for i in range(n_s)),
        tuple(f"o{i}" for i in range(n_o)),
        tuple(f"p{i}" for i in range(n_p)),
        A,
        B,
        C,
        np.full(n_s, 1.0 / n_s),
    )


@given(distributions(5), distributions(5))
def test_kl_is_non_negative_and_zero_on_itself(q: np.ndarray, p: np.ndarray) -> None:
    assert kl_divergence(q, np.log(p)) >= -1e-12
    assert kl_divergence(q, np.log(q)) == pytest.approx(0.0, abs=1e-12)


@given(arrays(np.float64, 6, elements=finite), finite)
def test_log_softmax_normalises_and_ignores_constants(x: np.ndarray, c: float) -> None:
    assert np.exp(log_softmax(x)).sum() == pytest.approx(1.0)
    np.testing.assert_allclose(log_softmax(x), log_softmax(x + c), atol=1e-9)
    assert softmax(x).sum() == pytest.approx(1.0)


@given(models(), st.data())
def test_ambiguity_and_risk_are_non_negative(model: GenerativeModel, data: st.DataObject) -> None:
    qs = data.draw(distributions(len(model.states)))
    for fe in all_free_energies(model, qs):
        assert fe.ambiguity >= 0.0
        assert fe.risk >= 0.0
        assert fe.total == pytest.approx(fe.risk + fe.ambiguity)
        assert sum(fe.predicted_outcomes) == pytest.approx(1.0)


@given(models(), st.data(), finite)
def test_efe_ordering_invariant_to_constant_added_to_preferences(
    model: GenerativeModel, data: st.DataObject, constant: float
) -> None:
    qs = data.draw(distributions(len(model.states)))
    before = np.array([fe.total for fe in all_free_energies(model, qs)])
    shifted = model.with_preferences(model.C + constant)
    after = np.array([fe.total for fe in all_free_energies(shifted, qs)])
    np.testing.assert_allclose(before, after, atol=1e-9)
    # Same ordering of every pair that is not a tie (ties may flip by rounding).
    for i in range(len(before)):
        for j in range(len(before)):
            if before[i] < before[j] - 1e-9:
                assert after[i] < after[j]


@given(models(), st.data())
def test_policy_matching_preferences_has_lowest_risk(
    model: GenerativeModel, data: st.DataObject
) -> None:
    """Preferences equal to what policy 0 predicts: no policy can have lower risk."""
    qs = data.draw(distributions(len(model.states)))
    predicted = np.array(expected_free_energy(model, qs, 0).predicted_outcomes)
    matched = model.with_preferences(np.log(predicted))
    risks = [fe.risk for fe in all_free_energies(matched, qs)]
    assert risks[0] == pytest.approx(0.0, abs=1e-9)
    assert all(risks[0] <= r + 1e-12 for r in risks)


@given(arrays(np.float64, 5, elements=st.floats(0, 10)), st.floats(0.1, 10))
def test_policy_posterior_prefers_lower_free_energy(g: np.ndarray, precision: float) -> None:
    q = policy_posterior(g, precision)
    assert q.sum() == pytest.approx(1.0)
    order = np.argsort(g)
    assert all(q[order[i]] >= q[order[i + 1]] - 1e-12 for i in range(len(g) - 1))


def test_entropy_of_uniform_and_certain() -> None:
    assert entropy(np.full(4, 0.25)) == pytest.approx(np.log(4))
    assert entropy(np.array([1.0, 0.0, 0.0])) == 0.0


def test_infer_states_is_bayes_rule() -> None:
    model = world.model_for(default_drives())
    posterior = infer_states(model, np.array([0.1, 0.9, 0.0, 0.0]))
    assert posterior[1] == pytest.approx(0.9)
    # Impossible evidence keeps the prior instead of dividing by zero.
    np.testing.assert_allclose(infer_states(model, np.zeros(4)), model.D)


def test_model_shapes_are_checked() -> None:
    model = world.model_for(default_drives())
    with pytest.raises(ValueError, match="A must be"):
        GenerativeModel(
            model.states, model.outcomes, model.policies, model.A[:3], model.B, model.C, model.D
        )
    with pytest.raises(ValueError, match="B must be"):
        GenerativeModel(
            model.states, model.outcomes, model.policies, model.A, model.B[:2], model.C, model.D
        )
    with pytest.raises(ValueError, match="C must"):
        GenerativeModel(
            model.states, model.outcomes, model.policies, model.A, model.B, model.C[:2], model.D
        )
    with pytest.raises(ValueError, match="column-stochastic"):
        GenerativeModel(
            model.states, model.outcomes, model.policies, model.A * 2, model.B, model.C, model.D
        )
    assert model.policy_index("explore") == 3


@settings(max_examples=50)
@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))
def test_world_belief_is_a_distribution(threat: float, social: float, novelty: float) -> None:
    qs = world.belief({"threat": threat, "social": social, "novelty": novelty})
    assert qs.sum() == pytest.approx(1.0)
    assert (qs > 0).all()


def test_threat_makes_withdrawal_the_lowest_free_energy() -> None:
    model = world.model_for(default_drives())
    qs = world.belief({"threat": 1.0})
    energies = {fe.policy: fe.total for fe in all_free_energies(model, qs)}
    assert min(energies, key=energies.__getitem__) == "withdraw"
    assert energies["approach"] > energies["withdraw"]
