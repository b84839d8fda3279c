"""The champion-vs-challenger A/B test: sticky assignment and the always-valid mSPRT.

Simulations use fixed seeds, so every figure below is reproducible; run with ``-s`` to see the
measured false-positive rates, power and coverage.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from emily.errors import EmilyError
from emily.mlops.abtest.assignment import ABTestError, assign_arm, unit_hash
from emily.mlops.abtest.statistics import (
    ABResult,
    analyse,
    confidence_sequence,
    fixed_horizon_sample_size,
    msprt_log_likelihood_ratio,
)

ALPHA = 0.05
EXPERIMENT = "appraisal-v2"
THREADS = [f"thread-{i}" for i in range(10_000)]


# --- (a) assignment ---------------------------------------------------------------------------


def test_assignment_is_deterministic_and_pinned() -> None:
    # Pinned to an independent computation: changing the hash would silently move live threads
    # to the other arm mid-experiment.
    key = f"{EXPERIMENT}\x00thread-0".encode()
    expected = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64
    assert unit_hash(EXPERIMENT, "thread-0") == expected
    arms = [assign_arm(t, experiment=EXPERIMENT, challenger_share=0.5) for t in THREADS[:4]]
    assert arms == ["challenger", "challenger", "champion", "challenger"]
    again = [assign_arm(t, experiment=EXPERIMENT, challenger_share=0.5) for t in THREADS[:4]]
    assert again == arms


def test_assignment_is_sticky_when_the_share_grows() -> None:
    def challengers(share: float) -> set[str]:
        return {
            t
            for t in THREADS
            if assign_arm(t, experiment=EXPERIMENT, challenger_share=share) == "challenger"
        }

    small, large = challengers(0.1), challengers(0.3)
    assert small < large  # growing the share only moves champions over, never back


@pytest.mark.parametrize("share", [0.05, 0.2, 0.5, 0.9])
def test_split_ratio_is_within_binomial_tolerance(share: float) -> None:
    n = len(THREADS)
    count = sum(
        assign_arm(t, experiment=EXPERIMENT, challenger_share=share) == "challenger"
        for t in THREADS
    )
    sd = math.sqrt(n * share * (1 - share))
    assert abs(count - n * share) <= 4 * sd, (count, n * share, sd)


def test_share_extremes() -> None:
    assert all(
        assign_arm(t, experiment=EXPERIMENT, challenger_share=0.0) == "champion" for t in THREADS
    )
    assert all(
        assign_arm(t, experiment=EXPERIMENT, challenger_share=1) == "challenger" for t in THREADS
    )


def test_experiments_split_independently() -> None:
    a = [assign_arm(t, experiment="exp-a", challenger_share=0.5) for t in THREADS]
    b = [assign_arm(t, experiment="exp-b", challenger_share=0.5) for t in THREADS]
    agree = sum(x == y for x, y in zip(a, b, strict=True)) / len(THREADS)
    assert abs(agree - 0.5) < 4 * math.sqrt(0.25 / len(THREADS))


@pytest.mark.parametrize("share", [-0.01, 1.01, math.nan, math.inf, "0.5", True, None])
def test_bad_share_is_rejected_by_name(share: object) -> None:
    with pytest.raises(ValueError, match="challenger_share") as info:
        assign_arm("t", experiment=EXPERIMENT, challenger_share=share)  # type: ignore[arg-type]
    assert isinstance(info.value, ABTestError)
    assert isinstance(info.value, EmilyError)
    assert info.value.field == "challenger_share"


def test_empty_experiment_is_rejected() -> None:
    with pytest.raises(ABTestError, match="experiment"):
        assign_arm("t", experiment="", challenger_share=0.5)


# --- simulations shared by (b) and (c) -----------------------------------------------------------


@dataclass(frozen=True)
class Runs:
    champion: npt.NDArray[np.float64]  # (runs, n)
    challenger: npt.NDArray[np.float64]
    looks: list[int]  # per-arm sample sizes at which the experiment is checked


def simulate(*, runs: int, n: int, effect: float, seed: int) -> Runs:
    rng = np.random.default_rng(seed)
    champion = rng.normal(1.0, 1.0, size=(runs, n))
    challenger = rng.normal(1.0 + effect, 1.0, size=(runs, n))
    return Runs(champion, challenger, list(range(20, n + 1, 20)))


def sequential(runs: Runs, *, minimum_effect: float = 0.5) -> list[list[ABResult]]:
    """analyse() at every look of every run."""
    return [
        [
            analyse(a[:k], b[:k], alpha=ALPHA, power=0.8, minimum_effect=minimum_effect)
            for k in runs.looks
        ]
        for a, b in zip(runs.champion, runs.challenger, strict=True)
    ]


def first_decision(run: list[ABResult]) -> str:
    """The decision an experimenter who stops at the first conclusive look acts on."""
    return next((r.decision for r in run if r.decision != "inconclusive"), "inconclusive")


def naive_t_test_p_values(runs: Runs) -> npt.NDArray[np.float64]:
    """Welch t-test p-values at every look, (runs, looks), vectorised over runs."""
    out = np.empty((runs.champion.shape[0], len(runs.looks)))
    for j, k in enumerate(runs.looks):
        a, b = runs.champion[:, :k], runs.challenger[:, :k]
        se = np.sqrt(a.var(axis=1, ddof=1) / k + b.var(axis=1, ddof=1) / k)
        t = (b.mean(axis=1) - a.mean(axis=1)) / se
        out[:, j] = 2 * stats.t.sf(np.abs(t), df=2 * k - 2)
    return out


@pytest.fixture(scope="module")
def null_runs() -> Runs:
    # 300 experiments without any effect, checked after every 20 episodes per arm up to 1000.
    return simulate(runs=300, n=1000, effect=0.0, seed=20170101)


@pytest.fixture(scope="module")
def null_results(null_runs: Runs) -> list[list[ABResult]]:
    return sequential(null_runs)


# --- (b) type I error under continuous peeking ---------------------------------------------------


def test_msprt_false_positive_rate_stays_below_alpha_despite_peeking(
    null_results: list[list[ABResult]],
) -> None:
    ever = [any(r.p_value <= ALPHA for r in run) for run in null_results]
    rate = float(np.mean(ever))
    wrong = [first_decision(run) == "promote" for run in null_results]
    print(f"\nmSPRT: null experiments ever rejected at alpha={ALPHA}, 50 looks: {rate:.3f}")
    assert rate <= ALPHA
    assert float(np.mean(wrong)) <= ALPHA / 2 + 0.02  # one direction of a two-sided test


def test_naive_repeated_t_tests_exceed_alpha_on_the_same_runs(null_runs: Runs) -> None:
    p = naive_t_test_p_values(null_runs)
    single_look = float(np.mean(p[:, -1] <= ALPHA))
    ever = float(np.mean((p <= ALPHA).any(axis=1)))
    print(f"\nt-test: one look at n=1000: {single_look:.3f}; ever over 50 looks: {ever:.3f}")
    assert single_look <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / len(p))  # fine once
    assert ever > 3 * ALPHA  # peeking breaks it


def test_confidence_sequence_covers_zero_at_every_look_under_the_null(
    null_results: list[list[ABResult]],
) -> None:
    covered = [all(r.ci is not None and r.ci.contains(0.0) for r in run) for run in null_results]
    assert float(np.mean(covered)) >= 1 - ALPHA


# --- (c) power and coverage with a real effect ---------------------------------------------------


def test_detects_a_half_sigma_improvement_and_covers_it() -> None:
    effect, n = -0.5, 160  # challenger lowers the error by 0.5 sigma
    fixed_power = stats.norm.sf(stats.norm.ppf(1 - ALPHA / 2) - abs(effect) / math.sqrt(2 / n))
    assert fixed_power >= 0.99  # the horizon where a single-look z-test is all but certain
    results = sequential(simulate(runs=300, n=n, effect=effect, seed=2017))
    power = float(np.mean([first_decision(run) == "promote" for run in results]))
    covered = float(
        np.mean([all(r.ci is not None and r.ci.contains(effect) for r in run) for run in results])
    )
    wrongly_kept = float(np.mean([first_decision(run) == "keep" for run in results]))
    print(
        f"\nmSPRT at delta=0.5 sigma, looks every 20 to n={n} per arm "
        f"(fixed-horizon power {fixed_power:.3f}): power {power:.3f}, "
        f"CI covers the effect at every look {covered:.3f}"
    )
    assert power >= 0.9
    assert covered >= 0.95
    assert wrongly_kept <= ALPHA


# --- (d) sample size --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variance", "delta", "alpha", "power", "expected"),
    [
        (1.0, 0.5, 0.05, 0.8, 63),  # 2 (1.95996 + 0.84162)² / 0.25 = 62.79
        (1.0, 0.5, 0.05, 0.9, 85),  # 84.06
        (1.0, 1.0, 0.05, 0.8, 16),  # 15.70
        (4.0, 1.0, 0.01, 0.8, 94),  # 2 (2.57583 + 0.84162)² * 4 = 93.43
        (0.0, 0.5, 0.05, 0.8, 1),
    ],
)
def test_fixed_horizon_sample_size_matches_the_textbook(
    variance: float, delta: float, alpha: float, power: float, expected: int
) -> None:
    got = fixed_horizon_sample_size(
        variance=variance, minimum_effect=delta, alpha=alpha, power=power
    )
    assert got == expected


def test_analyse_reports_the_sample_size_from_the_pooled_variance() -> None:
    champion = [0.0, 2.0] * 10  # variance 20/19 each
    challenger = [0.0, 2.0] * 15
    result = analyse(champion, challenger, alpha=0.05, power=0.8, minimum_effect=0.5)
    pooled = (19 * 20 / 19 + 29 * 30 / 29) / 48
    assert result.pooled_variance == pytest.approx(pooled)
    needed = math.ceil(2 * (1.959963985 + 0.841621234) ** 2 * pooled / 0.25)
    assert result.needed_per_arm == needed
    assert result.samples_still_needed == needed - 20  # the smaller arm


# --- the mSPRT's formulas against known answers ------------------------------------------------


def test_likelihood_ratio_matches_the_paper_for_equal_arms() -> None:
    # Johari et al., two-sample normal: n per arm, known sigma², mixture N(0, tau²).
    n, sigma2, tau2, diff = 50, 1.3, 0.25, 0.4
    paper = math.sqrt(2 * sigma2 / (2 * sigma2 + n * tau2)) * math.exp(
        n**2 * tau2 * diff**2 / (4 * sigma2 * (2 * sigma2 + n * tau2))
    )
    ours = msprt_log_likelihood_ratio(diff, 2 * sigma2 / n, tau2)
    assert ours == pytest.approx(math.log(paper), rel=1e-12)


def test_confidence_sequence_is_the_inverted_test() -> None:
    effect, v, tau2 = -0.3, 0.01, 0.25
    ci = confidence_sequence(effect, v, tau2, ALPHA)
    for bound in (ci.low, ci.high):
        llr = msprt_log_likelihood_ratio(effect, v, tau2, null=bound)
        assert llr == pytest.approx(math.log(1 / ALPHA), rel=1e-9)
    assert ci.level == pytest.approx(0.95)


def test_p_value_and_interval_agree() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(5, 300))
        a, b = rng.normal(1, 1, n), rng.normal(1 + rng.normal(0, 0.3), 1, n)
        r = analyse(a, b, alpha=ALPHA, power=0.8, minimum_effect=0.5)
        assert r.ci is not None
        assert (r.p_value <= ALPHA) == (not r.ci.contains(0.0))


# --- (e) decisions on constructed data ---------------------------------------------------------


def decide(champion: list[float], challenger: list[float], delta: float = 0.5) -> ABResult:
    return analyse(champion, challenger, alpha=ALPHA, power=0.8, minimum_effect=delta)


def test_promote_when_the_challenger_errs_less() -> None:
    r = decide([0.8, 1.2] * 100, [0.3, 0.7] * 100)
    assert r.decision == "promote"
    assert r.effect == pytest.approx(-0.5)
    assert r.ci is not None and r.ci.high < 0
    assert r.p_value < ALPHA
    assert "lower error" in r.reason


def test_promote_wins_over_futility_for_a_small_real_gain() -> None:
    r = decide([0.5, 0.7] * 2000, [0.4, 0.6] * 2000)  # effect -0.1, well inside (-0.5, 0)
    assert r.ci is not None and -0.5 < r.ci.low < r.ci.high < 0
    assert r.decision == "promote"


def test_keep_when_the_challenger_errs_more() -> None:
    r = decide([0.3, 0.7] * 100, [0.8, 1.2] * 100)
    assert r.decision == "keep"
    assert r.ci is not None and r.ci.low > 0
    assert "higher error" in r.reason


def test_keep_for_futility_when_no_worthwhile_gain_is_left() -> None:
    r = decide([0.2, 0.8] * 500, [0.2, 0.8] * 500)
    assert r.effect == 0.0
    assert r.ci is not None and -0.5 < r.ci.low < 0 < r.ci.high
    assert r.decision == "keep"
    assert "futility" in r.reason


def test_inconclusive_on_little_noisy_data() -> None:
    r = decide([0.2, 0.8, 0.5, 0.1], [0.3, 0.9, 0.4, 0.2])
    assert r.decision == "inconclusive"
    assert r.samples_still_needed is not None and r.samples_still_needed > 0
    assert f"about {r.samples_still_needed} more per arm" in r.reason


@pytest.mark.parametrize(
    ("champion", "challenger"), [([], []), ([0.1], [0.2, 0.3]), ([0.1, 0.2], [0.3])]
)
def test_fewer_than_two_per_arm_is_inconclusive_not_a_crash(
    champion: list[float], challenger: list[float]
) -> None:
    r = decide(champion, challenger)
    assert r.decision == "inconclusive"
    assert "at least 2" in r.reason
    assert r.effect is None and r.ci is None and r.p_value == 1.0
    assert r.n_champion == len(champion) and r.n_challenger == len(challenger)
    json.dumps(r.to_dict(), allow_nan=False)


def test_no_spread_is_inconclusive() -> None:
    r = decide([0.5, 0.5, 0.5], [0.2, 0.2])
    assert r.decision == "inconclusive"
    assert r.effect == pytest.approx(-0.3)
    assert "identical" in r.reason


def test_to_dict_is_plain_json() -> None:
    r = decide([0.8, 1.2] * 100, [0.3, 0.7] * 100)
    data = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert data["decision"] == "promote"
    assert data["ci"]["high"] < 0 and data["ci"]["level"] == pytest.approx(0.95)
    assert data["n_champion"] == 200 and data["mixture_variance"] == 0.25


def test_result_is_frozen() -> None:
    r = decide([0.1, 0.2], [0.3, 0.4])
    with pytest.raises(AttributeError):
        r.decision = "promote"  # type: ignore[misc]


# --- (f) bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(("arm", "bad"), [("champion", math.nan), ("challenger", math.inf)])
def test_non_finite_outcomes_name_the_arm_and_index(arm: str, bad: float) -> None:
    values = [0.1, 0.2, 0.3, bad, 0.5]
    good = [0.1, 0.2, 0.3]
    args = (values, good) if arm == "champion" else (good, values)
    with pytest.raises(ABTestError, match=rf"{arm}\[3\]") as info:
        analyse(*args, alpha=ALPHA, power=0.8, minimum_effect=0.5)
    assert info.value.field == arm and info.value.row == 3


@pytest.mark.parametrize("values", [["a", "b"], [[0.1, 0.2], [0.3, 0.4]]])
def test_malformed_outcomes_are_rejected(values: object) -> None:
    with pytest.raises(ABTestError, match="champion"):
        analyse(values, [0.1, 0.2], alpha=ALPHA, power=0.8, minimum_effect=0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("alpha", {"alpha": 0.0}),
        ("alpha", {"alpha": 1.0}),
        ("alpha", {"alpha": math.nan}),
        ("power", {"power": 1.5}),
        ("minimum_effect", {"minimum_effect": 0.0}),
        ("minimum_effect", {"minimum_effect": -0.2}),
        ("mixture_variance", {"mixture_variance": 0.0}),
        ("mixture_variance", {"mixture_variance": math.inf}),
    ],
)
def test_bad_parameters_name_the_field(field: str, kwargs: dict[str, float]) -> None:
    params: dict[str, float] = {"alpha": ALPHA, "power": 0.8, "minimum_effect": 0.5}
    params.update(kwargs)
    with pytest.raises(ABTestError) as info:
        analyse([0.1, 0.2], [0.3, 0.4], **params)
    assert info.value.field == field
