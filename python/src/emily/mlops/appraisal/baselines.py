"""What the trained model is measured against, on the same held-out split: the raters' own
agreement (the ceiling), a linear ridge on the same embeddings (the baseline to beat) and the
anchor method (what the loop did before it had a model)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def pearson(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(x) < 2 or float(x.std()) == 0.0 or float(y.std()) == 0.0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def split_half_reliability(
    ratings: npt.NDArray[np.floating], *, repeats: int = 200, seed: int = 0
) -> float:
    """Spearman–Brown corrected correlation between the means of two random halves of the
    raters, averaged over ``repeats`` random splits: how well humans agree with humans, the
    ceiling for any model of their mean rating."""
    matrix = np.asarray(ratings, dtype=np.float64)
    rng = np.random.default_rng(seed)
    raters = matrix.shape[1]
    values = []
    for _ in range(repeats):
        order = rng.permutation(raters)
        first, second = order[: raters // 2], order[raters // 2 :]
        r = pearson(matrix[:, first].mean(axis=1), matrix[:, second].mean(axis=1))
        values.append(2 * r / (1 + r))
    return float(np.mean(values))


def ridge_fit(
    x: npt.NDArray[np.floating], y: npt.NDArray[np.floating], alpha: float
) -> tuple[npt.NDArray[np.float64], float]:
    """Closed-form ridge regression with an unpenalised intercept: ``(weights, intercept)``."""
    features = np.asarray(x, dtype=np.float64)
    target = np.asarray(y, dtype=np.float64)
    mean_x, mean_y = features.mean(axis=0), float(target.mean())
    centred = features - mean_x
    gram = centred.T @ centred + alpha * np.eye(features.shape[1])
    weights = np.linalg.solve(gram, centred.T @ (target - mean_y))
    return weights, mean_y - float(mean_x @ weights)


def ridge_cv(
    x: npt.NDArray[np.floating],
    y: npt.NDArray[np.floating],
    alphas: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
    *,
    folds: int = 5,
    seed: int = 0,
) -> tuple[npt.NDArray[np.float64], float, float]:
    """Ridge with alpha chosen by K-fold CV on the given (training) rows:
    ``(weights, intercept, alpha)``."""
    features, target = np.asarray(x, np.float64), np.asarray(y, np.float64)
    parts = np.array_split(np.random.default_rng(seed).permutation(len(target)), folds)
    best_alpha, best_r = alphas[0], -2.0
    for alpha in alphas:
        rs = []
        for k in range(folds):
            test = parts[k]
            train = np.concatenate([p for j, p in enumerate(parts) if j != k])
            w, b = ridge_fit(features[train], target[train], alpha)
            rs.append(pearson(features[test] @ w + b, target[test]))
        if float(np.mean(rs)) > best_r:
            best_alpha, best_r = alpha, float(np.mean(rs))
    weights, intercept = ridge_fit(features, target, best_alpha)
    return weights, intercept, best_alpha
