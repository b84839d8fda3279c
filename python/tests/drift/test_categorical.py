"""Chi-square: hand-computed values, unseen categories, pooling of rare cells (and that it keeps
the level), a real-data comparison, and typed errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from emily.drift.categorical import chi_square_test, contingency_table
from emily.drift.errors import DriftInputError
from tests.drift.conftest import Lexicon, binomial_upper


def test_chi_square_hand_computed() -> None:
    reference = ["a"] * 30 + ["b"] * 20
    current = ["a"] * 10 + ["b"] * 40
    # Expected counts 20 / 30 in each row; χ² = 2 · (10²/20 + 10²/30) = 16.667 on 1 dof.
    result = chi_square_test(reference, current, feature="kind")
    assert result.statistic == pytest.approx(2 * (100 / 20 + 100 / 30))
    assert result.p_value == pytest.approx(stats.chi2.sf(2 * (100 / 20 + 100 / 30), 1))
    assert result.details["dof"] == 1
    assert (result.test, result.feature, result.n_reference, result.n_current) == (
        "chi2",
        "kind",
        50,
        50,
    )
    assert result.drift is True


def test_unseen_category_counts_against_the_reference() -> None:
    reference = ["a", "b"] * 50
    current = ["a", "b"] * 30 + ["new"] * 40
    result = chi_square_test(reference, current)
    assert result.details["unseen_categories"] == 1
    assert result.details["unseen_share"] == pytest.approx(0.4)
    assert result.drift is True and result.p_value is not None and result.p_value < 1e-10


def test_rare_categories_are_pooled_into_one_cell() -> None:
    reference = ["a"] * 40 + ["b"] * 40 + ["r1", "r2", "r3", "r4"] * 2
    current = ["a"] * 40 + ["b"] * 40 + ["r5", "r6"] * 4
    table, details = contingency_table(reference, current)
    # r1..r6 have expected counts of about 1-2: pooled into one cell of 8 + 8.
    assert details["pooled_categories"] == 6
    assert table.tolist() == [[40.0, 40.0, 8.0], [40.0, 40.0, 8.0]]
    assert chi_square_test(reference, current).drift is False


def test_single_category_means_no_drift() -> None:
    result = chi_square_test(["x"] * 10, ["x"] * 12)
    assert (result.statistic, result.p_value, result.drift) == (0.0, 1.0, False)


def test_level_with_many_sparse_categories() -> None:
    # Zipf-like frequencies over 40 categories, 80 rows a side: most cells are sparse.
    rng = np.random.default_rng(3)
    weights = 1.0 / np.arange(1, 41)
    weights /= weights.sum()
    labels = np.array([f"c{i}" for i in range(40)])
    trials = 400
    flags = [
        chi_square_test(rng.choice(labels, 80, p=weights), rng.choice(labels, 80, p=weights)).drift
        for _ in range(trials)
    ]
    assert np.mean(flags) <= binomial_upper(0.05, trials)


def test_real_ratings_as_categories(lexicon: Lexicon) -> None:
    # Rounded mean human valence as a 7-level category: emoticons are rated more extreme.
    levels = np.clip(np.round(lexicon.valence), -3, 3).astype(int).astype(str)
    words, others = levels[lexicon.alphabetic], levels[~lexicon.alphabetic]
    result = chi_square_test(words, others)
    table = np.array(
        [
            [np.sum(words == c) for c in sorted(set(levels))],
            [np.sum(others == c) for c in sorted(set(levels))],
        ]
    )
    assert result.statistic == pytest.approx(
        stats.chi2_contingency(table, correction=False).statistic
    )
    assert result.drift is True
    # Two random halves of the words do not differ (one fixed split).
    order = np.random.default_rng(0).permutation(len(words))
    half = len(words) // 2
    halves = chi_square_test(words[order[:half]], words[order[half:]])
    assert halves.p_value is not None and halves.p_value > 0.05


def test_missing_labels_and_bad_input_are_typed_errors() -> None:
    with pytest.raises(DriftInputError) as info:
        chi_square_test(["a"] * 10, pd.Series(["a", "b", None, "a", "b", "a"]))
    assert (info.value.field, info.value.row) == ("current", 2)
    with pytest.raises(DriftInputError) as info:
        chi_square_test([], ["a"] * 10)
    assert info.value.field == "reference" and "empty" in info.value.message
    with pytest.raises(DriftInputError) as info:
        chi_square_test(["a"] * 10, ["a", "b"])
    assert info.value.field == "current" and "at least" in info.value.message
    with pytest.raises(DriftInputError) as info:
        chi_square_test("abcdefgh", ["a"] * 10)
    assert info.value.field == "reference"
    with pytest.raises(DriftInputError) as info:
        chi_square_test(["a"] * 10, ["a"] * 10, min_expected=-1)
    assert info.value.field == "min_expected"
