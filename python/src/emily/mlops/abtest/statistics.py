"""Statistics of the champion-vs-challenger A/B test: an always-valid sequential test.

The outcome is one float per episode, lower is better (the absolute error of the model's
valence against a human label). The effect is ``mean(challenger) - mean(champion)``: negative
means the challenger errs less.

Why a sequential test. The experiment is looked at whenever someone (or a job) asks, as often
as they like, and stopped when it looks decided. A fixed-horizon t-test checked like that
rejects far more often than ``alpha`` under no effect (peeking every 20 episodes up to 1000 per
arm, about 30 % of null experiments "find" an effect at alpha = 0.05; see
``tests/mlops/test_abtest_statistics.py``). Group-sequential designs (Pocock, O'Brien-Fleming,
alpha spending) fix that only for a number and schedule of looks planned in advance, which an
experiment read from a dashboard does not have.

The choice: the mixture sequential probability ratio test (mSPRT) of Johari, Pekelis & Walsh,
"Always valid inference: bringing sequential analysis to A/B testing" (arXiv:1512.04922, 2017),
with a normal mixture. With ``theta_hat`` the observed effect and ``V`` its variance, the
likelihood ratio of "effect ~ N(theta0, tau²)" against "effect = theta0" is

    Lambda(theta0) = sqrt(V / (V + tau²)) * exp(tau² (theta_hat - theta0)² / (2 V (V + tau²)))

a martingale under ``effect = theta0``, so by Ville's inequality it ever exceeds ``1/alpha``
with probability at most ``alpha``, however often and whenever it is checked. Hence

* the always-valid p-value ``min(1, 1/Lambda(0))``, and
* the matching confidence sequence ``{theta0 : Lambda(theta0) < 1/alpha}`` =
  ``theta_hat ± sqrt(V (V + tau²) / tau² * (2 log(1/alpha) + log((V + tau²) / V)))``,

which cover the true effect at all looks at once with probability ``>= 1 - alpha``. The p-value
is ``<= alpha`` exactly when the interval excludes 0, so the two never disagree. Each look's
values are valid at any data-dependent stopping time; the paper's running minimum of the
p-value (and intersection of the intervals) only makes them monotone across looks, which the
stop-at-the-first-decision rule below does not need. The test is consistent (any non-zero
effect is detected eventually); the price of peeking freely is a wider interval than a
fixed-horizon one at the same n.

Details and caveats:

* ``V = s²_champion / n_champion + s²_challenger / n_challenger`` with the sample variances
  plugged in (unequal arm sizes and variances are fine). Plugging in the variance is what the
  paper does in production; it is exact only asymptotically, so fewer than 2 outcomes per arm
  give no test at all, and small arms are slightly optimistic.
* The mean of absolute errors is skewed but averages to normal quickly (tens of episodes).
* Episodes are treated as independent. Threads, not episodes, are randomised
  (``assignment``); when episodes of a thread are strongly correlated, pass one value per
  thread (its mean error) instead, or the interval is too narrow.
* ``tau²`` (``mixture_variance``) must be fixed before the data are seen. Its default is
  ``minimum_effect²``: the mixture then puts its weight on effects of the size we care about,
  and it is nearly the tightest choice at the fixed-horizon sample size: the interval's width
  at a given ``V`` is smallest near ``tau² ≈ 8 V`` for alpha = 0.05, and at the 80 %-power
  fixed-horizon n, ``minimum_effect² / V = (z_{1-alpha/2} + z_{power})² ≈ 7.8``.

Decision rule, checked in this order at every look (stopping at the first that is not
inconclusive keeps every error rate below ``alpha``):

* ``promote``: the interval lies entirely below 0, the challenger errs less (significant).
  This wins even when the gain is smaller than ``minimum_effect``: a real improvement is kept.
* ``keep``: the interval lies entirely above 0 (the challenger is significantly worse), or its
  lower end is above ``-minimum_effect`` (futility: the data rule out an improvement as large as
  ``minimum_effect``, with the same always-valid guarantee, so a challenger that truly improves
  by ``minimum_effect`` or more is wrongly kept with probability at most ``alpha``). We do not
  stop with ``keep`` merely because the fixed-horizon sample size was reached: that size is
  computed for a single look, the sequential test has less power there, and stopping on it
  would give neither test's guarantees.
* ``inconclusive``: otherwise; ``samples_still_needed`` then says how far the fixed-horizon
  plan still is (a planning figure for the smaller arm, not a stopping rule).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from scipy import special

from emily.mlops.abtest.assignment import ABTestError

__all__ = [
    "ABResult",
    "ABTestError",
    "ConfidenceInterval",
    "Decision",
    "analyse",
    "confidence_sequence",
    "fixed_horizon_sample_size",
    "msprt_log_likelihood_ratio",
]

Decision = Literal["promote", "keep", "inconclusive"]
Outcomes = Sequence[float] | npt.NDArray[np.floating]

MIN_PER_ARM: Final = 2
# ceil() of a sample size that is an integer up to rounding (63.000000000001) must stay 63.
_CEIL_SLACK: Final = 1e-9


@dataclass(frozen=True)
class ConfidenceInterval:
    """An always-valid ``level`` confidence interval for the effect."""

    low: float
    high: float
    level: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class ABResult:
    """One look at the experiment. ``None`` where fewer than 2 outcomes per arm (or outcomes
    without any spread) leave a quantity undefined."""

    n_champion: int
    n_challenger: int
    mean_champion: float | None
    mean_challenger: float | None
    effect: float | None  # challenger - champion; negative: the challenger errs less
    ci: ConfidenceInterval | None
    p_value: float  # always-valid, for "effect = 0"
    alpha: float
    power: float
    minimum_effect: float
    mixture_variance: float
    pooled_variance: float | None
    needed_per_arm: int | None  # fixed-horizon n per arm for `power` at `minimum_effect`
    samples_still_needed: int | None  # max(0, needed_per_arm - smaller arm's n)
    decision: Decision
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (no NaN or inf: undefined values are ``None``)."""
        return asdict(self)


def fixed_horizon_sample_size(
    *, variance: float, minimum_effect: float, alpha: float, power: float
) -> int:
    """Per-arm n of a two-sided two-sample z-test at ``alpha`` with ``power`` against a
    difference of ``minimum_effect``: ``ceil(2 (z_{1-alpha/2} + z_{power})² variance / δ²)``."""
    _check_probability("alpha", alpha)
    _check_probability("power", power)
    _check_positive("minimum_effect", minimum_effect)
    if not (math.isfinite(variance) and variance >= 0.0):
        raise ABTestError(f"must be finite and >= 0, got {variance!r}", field="variance")
    # ndtri is the standard normal quantile; stats.norm.ppf is the same number ~100x slower,
    # which matters when a dashboard or a simulation calls analyse() thousands of times.
    z = float(special.ndtri(1.0 - alpha / 2.0) + special.ndtri(power))
    exact = 2.0 * z * z * variance / (minimum_effect * minimum_effect)
    return max(1, math.ceil(exact - _CEIL_SLACK))


def msprt_log_likelihood_ratio(
    effect: float, variance: float, mixture_variance: float, null: float = 0.0
) -> float:
    """``log Lambda(null)`` of the normal-mixture SPRT for an effect estimate ``effect`` whose
    variance is ``variance`` (log space: the ratio itself overflows on large samples)."""
    v, tau2 = variance, mixture_variance
    return 0.5 * math.log(v / (v + tau2)) + tau2 * (effect - null) ** 2 / (2.0 * v * (v + tau2))


def confidence_sequence(
    effect: float, variance: float, mixture_variance: float, alpha: float
) -> ConfidenceInterval:
    """The always-valid ``1 - alpha`` interval ``{theta0 : Lambda(theta0) < 1/alpha}``."""
    v, tau2 = variance, mixture_variance
    half = math.sqrt(v * (v + tau2) / tau2 * (2.0 * math.log(1.0 / alpha) + math.log1p(tau2 / v)))
    return ConfidenceInterval(low=effect - half, high=effect + half, level=1.0 - alpha)


def analyse(
    champion: Outcomes,
    challenger: Outcomes,
    *,
    alpha: float,
    power: float,
    minimum_effect: float,
    mixture_variance: float | None = None,
) -> ABResult:
    """Test the challenger against the champion on per-episode errors (lower is better).

    ``minimum_effect`` is the smallest error reduction worth detecting (> 0, outcome units);
    ``mixture_variance`` is the mSPRT's ``tau²``, ``minimum_effect²`` by default (see the
    module docstring). Safe to call after every episode.
    """
    _check_probability("alpha", alpha)
    _check_probability("power", power)
    _check_positive("minimum_effect", minimum_effect)
    tau2 = minimum_effect**2 if mixture_variance is None else mixture_variance
    _check_positive("mixture_variance", tau2)
    a = _outcomes("champion", champion)
    b = _outcomes("challenger", challenger)
    n_a, n_b = len(a), len(b)
    base: dict[str, Any] = {
        "n_champion": n_a,
        "n_challenger": n_b,
        "mean_champion": float(a.mean()) if n_a else None,
        "mean_challenger": float(b.mean()) if n_b else None,
        "alpha": alpha,
        "power": power,
        "minimum_effect": minimum_effect,
        "mixture_variance": tau2,
    }
    undecided: dict[str, Any] = {
        "effect": None,
        "ci": None,
        "p_value": 1.0,  # trivially valid, and says "no evidence"
        "pooled_variance": None,
        "needed_per_arm": None,
        "samples_still_needed": None,
        "decision": "inconclusive",
    }
    if n_a < MIN_PER_ARM or n_b < MIN_PER_ARM:
        return ABResult(
            **base,
            **undecided,
            reason=(
                f"needs at least {MIN_PER_ARM} outcomes per arm to estimate the variance, has "
                f"{n_a} (champion) and {n_b} (challenger)"
            ),
        )

    var_a, var_b = float(a.var(ddof=1)), float(b.var(ddof=1))
    effect = float(b.mean() - a.mean())
    pooled = ((n_a - 1) * var_a + (n_b - 1) * var_b) / (n_a + n_b - 2)
    v = var_a / n_a + var_b / n_b
    if v <= 0.0:
        return ABResult(
            **base,
            **{**undecided, "effect": effect, "pooled_variance": pooled},
            reason=(
                "all outcomes within each arm are identical: with no spread the test cannot "
                "tell a real difference from chance"
            ),
        )

    ci = confidence_sequence(effect, v, tau2, alpha)
    log_lr = msprt_log_likelihood_ratio(effect, v, tau2)
    p_value = math.exp(-max(log_lr, 0.0))
    needed = fixed_horizon_sample_size(
        variance=pooled, minimum_effect=minimum_effect, alpha=alpha, power=power
    )
    still = max(0, needed - min(n_a, n_b))
    decision, reason = _decide(ci, p_value, minimum_effect=minimum_effect, still=still)
    return ABResult(
        **base,
        effect=effect,
        ci=ci,
        p_value=p_value,
        pooled_variance=pooled,
        needed_per_arm=needed,
        samples_still_needed=still,
        decision=decision,
        reason=reason,
    )


def _decide(
    ci: ConfidenceInterval, p_value: float, *, minimum_effect: float, still: int
) -> tuple[Decision, str]:
    """The decision rule of the module docstring, with a sentence saying why."""
    pct = f"{100 * ci.level:g} %"
    evidence = f"always-valid {pct} CI [{ci.low:+.4g}, {ci.high:+.4g}], p = {p_value:.3g}"
    if ci.high < 0.0:
        return "promote", f"the challenger has a lower error ({evidence})"
    if ci.low > 0.0:
        return "keep", f"the challenger has a higher error ({evidence})"
    if ci.low > -minimum_effect:
        return "keep", (
            f"futility: an error reduction of {minimum_effect:g} or more is ruled out ({evidence})"
        )
    more = (
        f"about {still} more per arm to reach the fixed-horizon plan"
        if still
        else "past the fixed-horizon plan; the sequential test continues until decided"
    )
    return "inconclusive", f"no significant difference yet ({evidence}); {more}"


def _outcomes(arm: str, values: Outcomes) -> npt.NDArray[np.float64]:
    """``values`` as a 1-D float array, or an error naming the arm and the first bad index."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ABTestError(f"outcomes must be numbers ({exc})", field=arm) from exc
    if array.ndim != 1:
        raise ABTestError(f"outcomes must be a flat sequence, got shape {array.shape}", field=arm)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        index = int(bad[0])
        raise ABTestError(
            f"outcome {arm}[{index}] is {float(array[index])} ({bad.size} non-finite in all)",
            field=arm,
            row=index,
            hint="drop episodes without a human label instead of passing NaN",
        )
    return array


def _check_probability(field: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ABTestError(f"must be a number, got {value!r}", field=field)
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise ABTestError(f"must be strictly between 0 and 1, got {value!r}", field=field)


def _check_positive(field: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ABTestError(f"must be a number, got {value!r}", field=field)
    if not (math.isfinite(value) and value > 0.0):
        raise ABTestError(f"must be a finite number > 0, got {value!r}", field=field)
