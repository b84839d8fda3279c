"""Embedding-space tests for text: kernel MMD with a permutation p-value, and a classifier
two-sample test (C2ST).

MMD: the statistic is the biased (V-statistic) estimate of MMD² with the RBF kernel
``k(x, y) = exp(-‖x − y‖² / (2σ²))``, σ² the median squared distance between distinct rows of
the pooled sample (the median heuristic; computed on the pooled sample, so it is the same for
every permutation and the test keeps its level). The p-value is ``(1 + #{T_b ≥ T}) / (1 + B)``
over ``B`` random relabellings of the pooled rows drawn from a fixed seed: exact in the sense that
under no drift it is never below its nominal level. All permutations are one matrix product:
with ``w`` the weight vector (``1/n`` on reference rows, ``-1/m`` on current rows) the statistic is
``wᵀ K w``, so ``B`` relabellings cost ``B·N²`` multiply-adds on the ``N × N`` kernel matrix.

C2ST: a logistic regression learns to tell reference rows from current rows on a stratified
training split; on the held-out split its scores for the two samples are compared with the
one-sided Mann–Whitney U test (AUC = U / (n₀·n₁)). Given the fitted model, held-out scores are
exchangeable under no drift, so that p-value is valid without refitting. With ``cv_folds`` the
statistic becomes the mean cross-validated AUC instead and the p-value comes from refitting on
``permutations`` label shufflings (valid too, but ``(permutations + 1) · cv_folds`` fits).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]
from sklearn.model_selection import StratifiedKFold, train_test_split  # type: ignore[import-untyped]

from emily.drift.checks import FloatArray, check_alpha, matrix_sample, same_dims
from emily.drift.errors import DriftInputError
from emily.drift.results import DriftResult

MIN_ROWS = 5
MIN_ROWS_C2ST = 10
DEFAULT_PERMUTATIONS = 200
# The N × N kernel matrix: 6000 pooled rows are 288 MB and ~7 G multiply-adds per 200
# permutations; beyond that, subsample (the test stays valid on a random subsample).
MAX_POOLED_ROWS = 6000
# Relabellings per matrix product: bounds the (chunk, N) weight block to a few MB.
PERMUTATION_CHUNK = 256


def squared_distances(points: FloatArray) -> FloatArray:
    """Pairwise squared Euclidean distances (Gram-matrix form, clipped at 0 against rounding)."""
    norms: FloatArray = np.einsum("ij,ij->i", points, points)
    squared: FloatArray = norms[:, None] + norms[None, :] - 2.0 * (points @ points.T)
    np.maximum(squared, 0.0, out=squared)
    np.fill_diagonal(squared, 0.0)
    return squared


def median_heuristic(squared: FloatArray) -> float:
    """σ²: the median squared distance over distinct pairs (upper triangle)."""
    upper = squared[np.triu_indices(len(squared), k=1)]
    sigma2 = float(np.median(upper))
    if sigma2 <= 0.0:
        # More than half the pairs coincide; the mean keeps the kernel from collapsing to 0/1.
        sigma2 = float(upper.mean())
    return sigma2


def mmd_test(
    reference: Any,
    current: Any,
    *,
    alpha: float = 0.05,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    bandwidth: float | None = None,
    feature: str = "embedding",
) -> DriftResult:
    """Kernel two-sample test on ``(rows, dims)`` matrices; ``bandwidth`` (σ) fixes the kernel
    width instead of the median heuristic (a monitor may fix it once from its reference)."""
    alpha = check_alpha(alpha)
    if permutations < 1:
        raise DriftInputError(
            f"need at least 1 permutation, got {permutations}", field="permutations"
        )
    if bandwidth is not None and not (np.isfinite(bandwidth) and bandwidth > 0):
        raise DriftInputError(f"must be a positive number, got {bandwidth}", field="bandwidth")
    ref = matrix_sample(reference, "reference", min_rows=MIN_ROWS)
    cur = matrix_sample(current, "current", min_rows=MIN_ROWS)
    same_dims(ref, cur)
    n, m = len(ref), len(cur)
    if n + m > MAX_POOLED_ROWS:
        raise DriftInputError(
            f"{n} + {m} rows exceed the {MAX_POOLED_ROWS} the kernel matrix is sized for",
            field="reference" if n >= m else "current",
            hint="test a random subsample (memory and time grow with the square of the rows)",
        )
    squared = squared_distances(np.concatenate([ref, cur]))
    sigma2 = bandwidth**2 if bandwidth is not None else median_heuristic(squared)
    if sigma2 <= 0.0:
        # Every row is the same point: the samples are identical, no kernel can tell them apart.
        return _no_spread_result(feature, alpha, n, m, permutations)
    kernel = np.exp(squared / (-2.0 * sigma2))
    weights = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    observed = float(weights @ kernel @ weights)
    exceed = _count_exceeding(kernel, weights, observed, permutations, np.random.default_rng(seed))
    p_value = (1.0 + exceed) / (1.0 + permutations)
    k_ref, k_cur, k_cross = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    unbiased = (
        (k_ref.sum() - n) / (n * (n - 1)) + (k_cur.sum() - m) / (m * (m - 1)) - 2.0 * k_cross.mean()
    )
    return DriftResult.by_p_value(
        test="mmd",
        feature=feature,
        statistic=observed,
        p_value=p_value,
        alpha=alpha,
        n_reference=n,
        n_current=m,
        details={
            "permutations": permutations,
            "seed": seed,
            "bandwidth": float(np.sqrt(sigma2)),
            "mmd2_unbiased": float(unbiased),
        },
    )


def _count_exceeding(
    kernel: FloatArray,
    weights: FloatArray,
    observed: float,
    permutations: int,
    rng: np.random.Generator,
) -> int:
    # Relabelling that reproduces the observed split gives the same value up to summation order.
    tolerance = 1e-12 * max(abs(observed), 1e-300)
    exceed = 0
    done = 0
    while done < permutations:
        size = min(PERMUTATION_CHUNK, permutations - done)
        shuffled = rng.permuted(np.broadcast_to(weights, (size, len(weights))), axis=1)
        values = np.einsum("bi,bi->b", shuffled @ kernel, shuffled)
        exceed += int(np.count_nonzero(values >= observed - tolerance))
        done += size
    return exceed


def _no_spread_result(feature: str, alpha: float, n: int, m: int, permutations: int) -> DriftResult:
    return DriftResult.by_p_value(
        test="mmd",
        feature=feature,
        statistic=0.0,
        p_value=1.0,
        alpha=alpha,
        n_reference=n,
        n_current=m,
        details={"permutations": permutations, "bandwidth": 0.0, "mmd2_unbiased": 0.0},
    )


def classifier_test(
    reference: Any,
    current: Any,
    *,
    alpha: float = 0.05,
    test_fraction: float = 0.5,
    cv_folds: int | None = None,
    permutations: int = 100,
    regularization: float = 1.0,
    seed: int = 0,
    feature: str = "embedding",
) -> DriftResult:
    """Classifier two-sample test with logistic regression (AUC as the statistic)."""
    alpha = check_alpha(alpha)
    if not 0.0 < test_fraction < 1.0:
        raise DriftInputError(f"must lie in (0, 1), got {test_fraction}", field="test_fraction")
    if regularization <= 0:
        raise DriftInputError(f"must be positive, got {regularization}", field="regularization")
    ref = matrix_sample(reference, "reference", min_rows=MIN_ROWS_C2ST)
    cur = matrix_sample(current, "current", min_rows=MIN_ROWS_C2ST)
    same_dims(ref, cur)
    points = np.concatenate([ref, cur])
    labels = np.concatenate([np.zeros(len(ref), dtype=np.int64), np.ones(len(cur), dtype=np.int64)])
    if cv_folds is None:
        auc, p_value, details = _holdout(points, labels, test_fraction, regularization, seed)
    else:
        auc, p_value, details = _cross_validated(
            points, labels, cv_folds, permutations, regularization, seed
        )
    return DriftResult.by_p_value(
        test="c2st",
        feature=feature,
        statistic=auc,
        p_value=p_value,
        alpha=alpha,
        n_reference=len(ref),
        n_current=len(cur),
        details=details,
    )


def _model(regularization: float) -> LogisticRegression:
    return LogisticRegression(C=regularization, max_iter=1000)


def _holdout(
    points: FloatArray, labels: Any, test_fraction: float, regularization: float, seed: int
) -> tuple[float, float, dict[str, float | int | str]]:
    x_train, x_test, y_train, y_test = train_test_split(
        points, labels, test_size=test_fraction, stratify=labels, random_state=seed
    )
    if min(np.bincount(y_test, minlength=2)) < 1 or min(np.bincount(y_train, minlength=2)) < 1:
        raise DriftInputError("a split lacks one of the samples", field="test_fraction")
    scores = _model(regularization).fit(x_train, y_train).decision_function(x_test)
    current_scores, reference_scores = scores[y_test == 1], scores[y_test == 0]
    outcome = stats.mannwhitneyu(current_scores, reference_scores, alternative="greater")
    auc = float(outcome.statistic) / (len(current_scores) * len(reference_scores))
    return auc, float(outcome.pvalue), {"method": "holdout", "n_test": len(y_test), "seed": seed}


def _cv_auc(
    points: FloatArray, labels: Any, folds: StratifiedKFold, regularization: float
) -> float:
    aucs = []
    for train, test in folds.split(points, labels):
        model = _model(regularization).fit(points[train], labels[train])
        aucs.append(roc_auc_score(labels[test], model.decision_function(points[test])))
    return float(np.mean(aucs))


def _cross_validated(
    points: FloatArray,
    labels: Any,
    cv_folds: int,
    permutations: int,
    regularization: float,
    seed: int,
) -> tuple[float, float, dict[str, float | int | str]]:
    if cv_folds < 2 or cv_folds > min(np.bincount(labels)):
        raise DriftInputError(
            f"need 2 <= folds <= the smaller sample's rows, got {cv_folds}", field="cv_folds"
        )
    if permutations < 1:
        raise DriftInputError(
            f"need at least 1 permutation, got {permutations}", field="permutations"
        )
    folds = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    observed = _cv_auc(points, labels, folds, regularization)
    rng = np.random.default_rng(seed)
    exceed = sum(
        _cv_auc(points, rng.permutation(labels), folds, regularization) >= observed
        for _ in range(permutations)
    )
    p_value = (1.0 + exceed) / (1.0 + permutations)
    details: dict[str, float | int | str] = {
        "method": "cv-permutation",
        "cv_folds": cv_folds,
        "permutations": permutations,
        "seed": seed,
    }
    return observed, p_value, details
