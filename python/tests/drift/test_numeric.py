"""KS and PSI: values against scipy and hand computation, level and power on known shifts,
the small-sample bias of PSI, and typed errors for bad samples."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from emily.drift.errors import DriftInputError
from emily.drift.numeric import (
    ks_test,
    population_stability_index,
    psi_edges,
    psi_level,
    psi_test,
)
from tests.drift.conftest import Lexicon, binomial_upper


def test_ks_hand_computed_statistic() -> None:
    # Empirical CDFs differ by 0.4 at every point between 2 and 5.
    result = ks_test([1, 2, 3, 4, 5], [3, 4, 5, 6, 7], alpha=0.05, feature="x")
    assert result.statistic == pytest.approx(0.4)
    assert result.p_value == pytest.approx(stats.ks_2samp([1, 2, 3, 4, 5], [3, 4, 5, 6, 7]).pvalue)
    assert (result.test, result.feature, result.n_reference, result.n_current) == ("ks", "x", 5, 5)
    assert result.alpha == 0.05 and result.threshold is None
    assert result.drift is False


def test_ks_on_real_ratings_words_vs_emoticons(lexicon: Lexicon) -> None:
    words = lexicon.valence[lexicon.alphabetic]
    others = lexicon.valence[~lexicon.alphabetic]
    result = ks_test(words, others)
    expected = stats.ks_2samp(words, others)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.drift is True
    assert (result.n_reference, result.n_current) == (len(words), len(others))


def test_ks_level_and_power_on_known_mean_shift() -> None:
    rng = np.random.default_rng(11)
    trials, n = 400, 60
    null = [ks_test(rng.normal(size=n), rng.normal(size=n)).drift for _ in range(trials)]
    # A one-standard-deviation shift: the KS test's power at 60 a side is above 0.95.
    shifted = [ks_test(rng.normal(size=n), rng.normal(1.0, size=n)).drift for _ in range(200)]
    # The exact KS p-value is conservative on continuous data: never above alpha on average.
    assert np.mean(null) <= binomial_upper(0.05, trials)
    assert np.mean(shifted) >= 0.9


def _hand_psi(reference: np.ndarray, current: np.ndarray, edges: list[float]) -> float:
    """PSI written out cell by cell (the module's definition: 0.5 added to every count)."""
    bounds = [-np.inf, *edges, np.inf]
    k = len(bounds) - 1
    total = 0.0
    for lo, hi in itertools.pairwise(bounds):
        r = float(np.sum((reference > lo) & (reference <= hi)))
        c = float(np.sum((current > lo) & (current <= hi)))
        p = (r + 0.5) / (len(reference) + 0.5 * k)
        q = (c + 0.5) / (len(current) + 0.5 * k)
        total += (q - p) * np.log(q / p)
    return total


def test_psi_binning_on_reference_quantiles_and_hand_value() -> None:
    reference = np.arange(100, dtype=float)
    current = np.concatenate([np.arange(50, 100, dtype=float), np.full(30, 500.0)])
    edges = psi_edges(reference, 4)
    # Cut points are reference values: 25 of the 100 in each right-closed bin.
    assert edges.tolist() == [24.0, 49.0, 74.0]
    value = population_stability_index(reference, current, bins=4)
    assert value == pytest.approx(_hand_psi(reference, current, [24.0, 49.0, 74.0]))
    # Values far above the reference's range land in the open top bin and raise PSI.
    assert value > population_stability_index(reference, current[:50], bins=4)


def test_psi_identical_samples_is_zero_and_thresholds_decide() -> None:
    sample = np.linspace(-1, 1, 200)
    same = psi_test(sample, sample)
    assert same.statistic == pytest.approx(0.0, abs=1e-12)
    assert same.drift is False and same.details["level"] == "stable"
    assert same.p_value is None and same.alpha is None and same.threshold == 0.25
    moved = psi_test(sample, sample + 0.5, threshold=0.25)
    assert moved.statistic >= 0.25 and moved.drift and moved.details["level"] == "major"
    assert psi_level(0.05) == "stable"
    assert psi_level(0.1) == "moderate"
    assert psi_level(0.3) == "major"


def test_psi_discrete_feature_merges_duplicate_cut_points() -> None:
    reference = np.repeat([0.0, 1.0, 2.0], [50, 30, 20])
    result = psi_test(reference, reference[::-1], bins=10)
    # Cut points 0 and 1 (2 is the maximum): one bin per value.
    assert result.details["bins"] == 3
    assert result.statistic == pytest.approx(0.0, abs=1e-12)


def test_psi_small_sample_bias_matches_its_null_mean() -> None:
    # Documented claim: under no drift E[PSI] ≈ (bins-1)(1/n + 1/m), 0.09 for 10 bins, 200 a side.
    rng = np.random.default_rng(5)
    results = [psi_test(rng.normal(size=200), rng.normal(size=200)) for _ in range(300)]
    mean = float(np.mean([r.statistic for r in results]))
    assert results[0].details["null_mean"] == pytest.approx(0.09)
    assert mean == pytest.approx(0.09, rel=0.15)
    # Its χ² approximation gives a p-value with about the nominal level.
    level = np.mean([float(r.details["approx_p_value"]) < 0.05 for r in results])
    assert level <= binomial_upper(0.05, 300)


@pytest.mark.parametrize(
    ("reference", "current", "field", "row"),
    [
        ([], [1.0] * 10, "reference", None),
        ([1.0] * 10, [1.0, 2.0], "current", None),
        ([1.0] * 10, [1.0, 2.0, float("nan"), 4.0, 5.0], "current", 2),
        ([1.0, float("inf")] + [0.0] * 8, [1.0] * 10, "reference", 1),
        ([[1.0, 2.0]] * 10, [1.0] * 10, "reference", None),
        (["a"] * 10, [1.0] * 10, "reference", None),
    ],
)
def test_bad_numeric_samples_name_field_and_row(
    reference: list[object], current: list[object], field: str, row: int | None
) -> None:
    for test in (ks_test, psi_test):
        with pytest.raises(DriftInputError) as info:
            test(reference, current)
        assert info.value.field == field
        assert info.value.row == row


def test_pandas_missing_values_and_non_numeric_columns_are_refused() -> None:
    with_na = pd.Series([1.0, 2.0, None, 4.0, 5.0, 6.0], dtype="Float64")
    with pytest.raises(DriftInputError) as info:
        ks_test(pd.Series(np.arange(10.0)), with_na)
    assert (info.value.field, info.value.row) == ("current", 2)
    with pytest.raises(DriftInputError, match="not numeric") as info:
        ks_test(pd.Series([True, False] * 5), pd.Series(np.arange(10.0)))
    assert info.value.field == "reference"


def test_bad_parameters_are_refused() -> None:
    sample = np.arange(10.0)
    with pytest.raises(DriftInputError) as info:
        ks_test(sample, sample, alpha=1.5)
    assert info.value.field == "alpha"
    with pytest.raises(DriftInputError) as info:
        psi_test(sample, sample, bins=1)
    assert info.value.field == "bins"
    with pytest.raises(DriftInputError) as info:
        psi_test(sample, sample, threshold=0.1, moderate=0.2)
    assert info.value.field == "moderate"
