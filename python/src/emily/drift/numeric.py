"""Numeric features: the two-sample Kolmogorov–Smirnov test and the population stability index.

PSI binning (documented because every tool bins differently and the number depends on it):
``bins`` equal-frequency bins cut at the reference's quantiles ``1/bins … (bins-1)/bins``, taken
as reference values (inverted-CDF quantiles), bins closed on the right (``x ≤ cut`` goes below
the cut), so distinct reference values split exactly evenly. Duplicate cut points are merged and a
cut at the reference's maximum is dropped (its upper bin would be empty by construction), so a
discrete feature gets at most one bin per value. The outer bins are open to ±∞, so current values
outside the reference's range still count. Each bin's count gets 0.5 added on both sides before the
proportions are taken, so a bin empty on one side contributes a finite, sample-size-aware term
instead of infinity or an arbitrary epsilon. ``PSI = Σ (q − p) · ln(q / p)``.

Reading it: < 0.1 stable, 0.1–0.25 moderate shift, ≥ 0.25 major shift (the usual credit-scoring
rule of thumb). PSI is biased upwards on small samples: under no drift ``n·m/(n+m) · PSI`` is
approximately χ² with ``bins − 1`` degrees of freedom, so its expected value is about
``(bins − 1)(1/n + 1/m)`` (0.09 for 10 bins and 200 rows a side). ``details`` carries that null
mean and the χ² approximation's p-value so a small-window PSI can be read against it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

from emily.drift.checks import FloatArray, check_alpha, numeric_sample
from emily.drift.errors import DriftInputError
from emily.drift.results import DriftResult

MIN_ROWS = 5
PSI_MODERATE = 0.1
PSI_MAJOR = 0.25
PSI_SMOOTHING = 0.5


def ks_test(
    reference: Any, current: Any, *, alpha: float = 0.05, feature: str = "value"
) -> DriftResult:
    """Two-sided two-sample KS test (scipy's exact p-value on small samples, asymptotic above)."""
    alpha = check_alpha(alpha)
    ref = numeric_sample(reference, "reference", min_rows=MIN_ROWS)
    cur = numeric_sample(current, "current", min_rows=MIN_ROWS)
    outcome = stats.ks_2samp(ref, cur, alternative="two-sided", method="auto")
    p_value = float(outcome.pvalue)
    return DriftResult.by_p_value(
        test="ks",
        feature=feature,
        statistic=float(outcome.statistic),
        p_value=p_value,
        alpha=alpha,
        n_reference=len(ref),
        n_current=len(cur),
        details={"statistic_location": float(outcome.statistic_location)},
    )


def psi_edges(reference: FloatArray, bins: int) -> FloatArray:
    """Inner cut points at the reference quantiles (duplicates and the maximum dropped)."""
    probabilities = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    edges = np.unique(np.quantile(reference, probabilities, method="inverted_cdf"))
    kept: FloatArray = edges[edges < reference.max()]
    return kept


def psi_counts(values: FloatArray, edges: FloatArray) -> FloatArray:
    """Counts per bin, ``len(edges) + 1`` bins, a value on a cut point in the bin below it."""
    index = np.searchsorted(edges, values, side="left")
    return np.bincount(index, minlength=len(edges) + 1).astype(np.float64)


def psi_value(ref_counts: FloatArray, cur_counts: FloatArray) -> float:
    """PSI from two count vectors over the same bins, with the 0.5 smoothing above."""
    k = len(ref_counts)
    p = (ref_counts + PSI_SMOOTHING) / (ref_counts.sum() + PSI_SMOOTHING * k)
    q = (cur_counts + PSI_SMOOTHING) / (cur_counts.sum() + PSI_SMOOTHING * k)
    return float(np.sum((q - p) * np.log(q / p)))


def population_stability_index(reference: Any, current: Any, *, bins: int = 10) -> float:
    """PSI of ``current`` against ``reference`` (binning in the module docstring)."""
    ref = numeric_sample(reference, "reference", min_rows=MIN_ROWS)
    cur = numeric_sample(current, "current", min_rows=MIN_ROWS)
    edges = psi_edges(ref, _check_bins(bins))
    return psi_value(psi_counts(ref, edges), psi_counts(cur, edges))


def psi_level(value: float, *, moderate: float = PSI_MODERATE, major: float = PSI_MAJOR) -> str:
    if value >= major:
        return "major"
    return "moderate" if value >= moderate else "stable"


def psi_test(
    reference: Any,
    current: Any,
    *,
    bins: int = 10,
    threshold: float = PSI_MAJOR,
    moderate: float = PSI_MODERATE,
    feature: str = "value",
) -> DriftResult:
    """PSI decided by ``threshold`` (drift when PSI ≥ threshold; 0.25 = "major" by default)."""
    if not 0.0 < moderate <= threshold:
        raise DriftInputError(
            f"need 0 < moderate <= threshold, got {moderate} and {threshold}", field="moderate"
        )
    ref = numeric_sample(reference, "reference", min_rows=MIN_ROWS)
    cur = numeric_sample(current, "current", min_rows=MIN_ROWS)
    edges = psi_edges(ref, _check_bins(bins))
    value = psi_value(psi_counts(ref, edges), psi_counts(cur, edges))
    used_bins = len(edges) + 1
    n, m = len(ref), len(cur)
    # Under H0, n·m/(n+m)·PSI ≈ χ²(bins-1): the mean and a p-value to read a small-window PSI by.
    scale = n * m / (n + m)
    approx_p = float(stats.chi2.sf(value * scale, used_bins - 1)) if used_bins > 1 else 1.0
    return DriftResult(
        test="psi",
        feature=feature,
        statistic=value,
        threshold=float(threshold),
        drift=value >= threshold,
        n_reference=n,
        n_current=m,
        details={
            "bins": used_bins,
            "level": psi_level(value, moderate=moderate, major=threshold),
            "moderate": float(moderate),
            "null_mean": (used_bins - 1) * (1.0 / n + 1.0 / m),
            "approx_p_value": approx_p,
        },
    )


def _check_bins(bins: int) -> int:
    if bins < 2:
        raise DriftInputError(f"need at least 2 bins, got {bins}", field="bins")
    return bins
