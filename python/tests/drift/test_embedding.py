"""MMD and the classifier two-sample test: hand-computed statistic, p-values uniform under no
drift (fixed seeds, binomial bounds), power on known shifts and on real embeddings (words vs
emoticons), determinism, and typed errors."""

from __future__ import annotations

import numpy as np
import pytest

from emily.drift.embedding import classifier_test, mmd_test
from emily.drift.errors import DriftInputError
from tests.drift.conftest import LexiconEmbeddings, binomial_upper


def test_mmd_statistic_hand_computed() -> None:
    xs = [0.0, 1.0, 0.5, 2.0, 1.5]
    ys = [2.0, 3.0] * 3
    result = mmd_test(np.array([xs]).T, np.array([ys]).T, bandwidth=1.0, permutations=10)

    def k(a: float, b: float) -> float:
        return float(np.exp(-((a - b) ** 2) / 2.0))

    expected = (
        np.mean([k(a, b) for a in xs for b in xs])
        + np.mean([k(a, b) for a in ys for b in ys])
        - 2 * np.mean([k(a, b) for a in xs for b in ys])
    )
    assert result.statistic == pytest.approx(expected)
    assert result.details["bandwidth"] == 1.0
    assert (result.n_reference, result.n_current) == (5, 6)


def test_mmd_median_heuristic_bandwidth() -> None:
    rng = np.random.default_rng(0)
    reference, current = rng.normal(size=(20, 3)), rng.normal(size=(15, 3))
    pooled = np.concatenate([reference, current])
    distances = [
        float(np.sum((pooled[i] - pooled[j]) ** 2))
        for i in range(len(pooled))
        for j in range(i + 1, len(pooled))
    ]
    result = mmd_test(reference, current, permutations=20)
    assert result.details["bandwidth"] == pytest.approx(np.sqrt(np.median(distances)))


def test_mmd_p_values_are_uniform_under_no_drift() -> None:
    rng = np.random.default_rng(42)
    trials = 300
    p = np.array(
        [
            mmd_test(
                rng.normal(size=(30, 8)), rng.normal(size=(20, 8)), permutations=99, seed=i
            ).p_value
            for i in range(trials)
        ]
    )
    # Permutation p-values (1 + k) / (1 + B): never below 1/(B+1), P(p <= q) ≈ q for every q.
    assert p.min() >= 1 / 100
    for q in (0.05, 0.25, 0.5):
        spread = 3.0 * np.sqrt(q * (1 - q) / trials)
        assert abs(np.mean(p <= q) - q) <= spread, q
    assert np.mean(p < 0.05) <= binomial_upper(0.05, trials)


def test_mmd_power_on_a_known_mean_shift() -> None:
    rng = np.random.default_rng(1)
    # A 1.2-standard-deviation shift along one of 8 dimensions, 40 rows a side.
    shift = np.zeros(8)
    shift[0] = 1.2
    found = [
        mmd_test(rng.normal(size=(40, 8)), rng.normal(size=(40, 8)) + shift, seed=i).drift
        for i in range(100)
    ]
    assert np.mean(found) >= 0.9


def test_mmd_is_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(2)
    reference, current = rng.normal(size=(25, 4)), rng.normal(size=(25, 4))
    first = mmd_test(reference, current, seed=7, permutations=50)
    assert mmd_test(reference, current, seed=7, permutations=50) == first
    others = {mmd_test(reference, current, seed=s, permutations=50).p_value for s in range(10)}
    assert len(others) > 1


def test_mmd_identical_points_cannot_drift() -> None:
    same = np.ones((10, 3))
    result = mmd_test(same, same)
    assert (result.statistic, result.p_value, result.drift) == (0.0, 1.0, False)


def test_mmd_on_real_embeddings_words_vs_emoticons(lexicon_embeddings: LexiconEmbeddings) -> None:
    words, others = lexicon_embeddings.words, lexicon_embeddings.others
    rng = np.random.default_rng(9)
    # Level: 100 pairs of disjoint word samples (20 vs 20) from the same 240 words.
    null = []
    for i in range(100):
        order = rng.permutation(len(words))
        null.append(mmd_test(words[order[:20]], words[order[20:40]], seed=i).drift)
    assert np.mean(null) <= binomial_upper(0.05, 100)
    # Power: a window where half the episodes are emoticons or symbols.
    shifted = []
    for i in range(50):
        order = rng.permutation(len(words))
        window = np.concatenate([words[order[100:125]], others[rng.choice(len(others), 25)]])
        shifted.append(mmd_test(words[order[:100]], window, seed=i).drift)
    assert np.mean(shifted) >= 0.9


def test_c2st_level_and_power() -> None:
    rng = np.random.default_rng(4)
    null = [
        classifier_test(rng.normal(size=(40, 6)), rng.normal(size=(40, 6)), seed=i).drift
        for i in range(120)
    ]
    assert np.mean(null) <= binomial_upper(0.05, 120)
    shift = np.full(6, 0.6)
    found = [
        classifier_test(rng.normal(size=(40, 6)), rng.normal(size=(40, 6)) + shift, seed=i)
        for i in range(20)
    ]
    assert np.mean([r.drift for r in found]) >= 0.9
    assert all(r.test == "c2st" and 0.0 <= r.statistic <= 1.0 for r in found)
    assert found[0].details["method"] == "holdout" and found[0].details["n_test"] == 40


def test_c2st_cross_validated_permutation_mode() -> None:
    rng = np.random.default_rng(6)
    reference = rng.normal(size=(30, 4))
    shifted = classifier_test(
        reference, rng.normal(size=(30, 4)) + 1.5, cv_folds=3, permutations=19
    )
    assert shifted.details["method"] == "cv-permutation"
    assert shifted.p_value == pytest.approx(1 / 20)  # no shuffled labelling beats the real one
    assert shifted.statistic > 0.9
    same = classifier_test(reference, rng.normal(size=(30, 4)), cv_folds=3, permutations=19)
    assert same.p_value is not None and same.p_value >= 1 / 20


@pytest.mark.parametrize(
    ("reference", "current", "field", "row"),
    [
        (np.zeros((0, 3)), np.zeros((10, 3)), "reference", None),
        (np.zeros((10, 3)), np.zeros((2, 3)), "current", None),
        (np.zeros(10), np.zeros((10, 3)), "reference", None),
        (np.zeros((10, 3)), np.zeros((10, 4)), "current", None),
        (np.zeros((10, 0)), np.zeros((10, 0)), "reference", None),
    ],
)
def test_bad_matrices_are_typed_errors(
    reference: np.ndarray, current: np.ndarray, field: str, row: int | None
) -> None:
    for test in (mmd_test, classifier_test):
        with pytest.raises(DriftInputError) as info:
            test(reference, current)
        assert (info.value.field, info.value.row) == (field, row)


def test_mmd_refuses_a_kernel_matrix_too_large_to_hold() -> None:
    with pytest.raises(DriftInputError) as info:
        mmd_test(np.zeros((5000, 2)), np.zeros((1001, 2)))
    assert info.value.field == "reference" and "subsample" in (info.value.hint or "")


def test_nan_rows_and_bad_parameters() -> None:
    reference = np.zeros((12, 3))
    current = np.zeros((12, 3))
    current[7, 1] = np.nan
    with pytest.raises(DriftInputError) as info:
        mmd_test(reference, current)
    assert (info.value.field, info.value.row) == ("current", 7)
    good = np.random.default_rng(0).normal(size=(12, 3))
    for kwargs, field in (
        ({"permutations": 0}, "permutations"),
        ({"bandwidth": -1.0}, "bandwidth"),
        ({"alpha": 0.0}, "alpha"),
    ):
        with pytest.raises(DriftInputError) as info:
            mmd_test(good, good, **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field
    for kwargs, field in (
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"regularization": 0.0}, "regularization"),
        ({"cv_folds": 1}, "cv_folds"),
        ({"cv_folds": 3, "permutations": 0}, "permutations"),
    ):
        with pytest.raises(DriftInputError) as info:
            classifier_test(good, good, **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field
