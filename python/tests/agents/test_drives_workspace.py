from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from emily.agents import drives as drv
from emily.agents import world
from emily.agents.active_inference import all_free_energies
from emily.agents.perception import LEXICON, Stimulus, features, salience
from emily.agents.workspace import Proposal, compete

cues = st.fixed_dictionaries(
    {k: st.floats(0, 1) for k in ("threat", "social", "novelty", "reward")}
)
WEIGHTS = {"instinct": 1.0, "affect": 0.9, "cognition": 1.1}


@given(cues, st.floats(0, 100_000))
def test_reflex_is_always_available_and_levels_bounded(
    features_: dict[str, float], dt: float
) -> None:
    drives = drv.update_drives(drv.default_drives(), features_, dt)
    assert all(0.0 <= d.level <= 1.0 for d in drives.values())
    proposal = drv.reflex(drives)
    assert proposal.policy in world.POLICIES
    assert 0.0 <= proposal.urgency < 1.0


def test_threat_raises_safety_set_point_and_triggers_withdrawal() -> None:
    drives = drv.update_drives(drv.default_drives(), {"threat": 1.0})
    assert drives["safety"].set_point > drv.default_drives()["safety"].set_point
    reflex = drv.reflex(drives)
    assert (reflex.policy, reflex.drive) == ("withdraw", "safety")
    relieved = drv.satisfy(drives, "withdraw")
    assert relieved["safety"].level > drives["safety"].level


def test_time_without_company_builds_social_need() -> None:
    drives = drv.update_drives(drv.default_drives(), {}, dt_s=12 * 3600)
    assert drives["social"].deficit > 0
    assert drv.reflex(drv.default_drives()).policy == "rest"
    assert drv.reflex({}).policy == "rest"


def test_drives_round_trip() -> None:
    drives = drv.update_drives(drv.default_drives(), {"novelty": 0.5}, 60)
    assert drv.drives_from_dict(drv.drives_to_dict(drives)) == drives
    assert drv.drives_from_dict(None) == drv.default_drives()


def test_preferences_follow_deficits() -> None:
    lonely = drv.update_drives(drv.default_drives(), {}, dt_s=24 * 3600)
    c_lonely = world.preferences(lonely)
    c_base = world.preferences(drv.default_drives())
    connection = world.OUTCOMES.index("connection")
    assert c_lonely[connection] > c_base[connection]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(("instinct", "affect", "cognition")),
            st.sampled_from(world.POLICIES),
            st.floats(0, 1),
            st.floats(0, 1),
        ),
        min_size=1,
        max_size=6,
    ),
    cues,
)
def test_workspace_chooses_minimum_free_energy_among_candidates(
    raw: list[tuple[str, str, float, float]], features_: dict[str, float]
) -> None:
    proposals = [Proposal(layer, policy, c, u) for layer, policy, c, u in raw]
    model = world.model_for(drv.default_drives())
    qs = world.belief(features_)
    decision = compete(proposals, model, qs, WEIGHTS)
    energies = {fe.policy: fe.total for fe in all_free_energies(model, qs)}
    assert decision.policy in decision.candidates
    assert energies[decision.policy] == pytest.approx(min(energies[c] for c in decision.candidates))
    assert decision.winner.salience(WEIGHTS) == pytest.approx(max(decision.saliences), abs=1e-6)
    assert sum(decision.posterior.values()) == pytest.approx(1.0)
    assert decision.winner.policy in decision.candidates


def test_weak_proposals_do_not_reach_the_workspace() -> None:
    model = world.model_for(drv.default_drives())
    qs = world.belief({"threat": 1.0})
    decision = compete(
        [Proposal("instinct", "rest", 1.0, 1.0), Proposal("affect", "withdraw", 0.1, 0.1)],
        model,
        qs,
        WEIGHTS,
    )
    assert decision.candidates == ["rest"]
    assert decision.layer == "instinct"
    with pytest.raises(ValueError, match="at least one"):
        compete([Proposal("cognition", "fly", 1, 1)], model, qs, WEIGHTS)


def test_features_from_words_and_explicit_cues() -> None:
    text = "There is smoke and a fire alarm, danger!"
    assert features(Stimulus(text=text))["threat"] == 1.0
    f = features(Stimulus(text=text, threat=0.2, valence=0.5))
    assert f["threat"] == 0.2 and f["valence"] == 0.5
    calm = features(Stimulus(text="the kettle"))
    assert salience(calm) < salience(features(Stimulus(text=text)))
    assert all(w == w.lower() for words in LEXICON.values() for w in words)
    assert np.isclose(salience({}), 0.2)
