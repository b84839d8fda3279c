"""The ``evaluate`` stage: held-out metrics of the trained appraiser beside the raters' ceiling,
the ridge baseline and the anchor method on the same split; ``dvc plots`` data (predicted vs
human, residuals by kind); the metrics logged to the training run; and the gate: the stage fails
when the held-out r is below ``params.yaml:evaluate.min_r``."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt

from emily.errors import EmilyError
from emily.mlops.appraisal.anchors import AnchorAxis
from emily.mlops.appraisal.baselines import pearson, ridge_cv, split_half_reliability
from emily.mlops.appraisal.model import KernelRidgeAppraiser
from emily.mlops.pipeline import dataset
from emily.mlops.pipeline.layout import Layout
from emily.mlops.pipeline.params import load_params
from emily.mlops.pipeline.stages import load_embeddings


class EvaluationGateError(EmilyError):
    """The model is worse than the gate allows; it must not be registered."""


def spearman(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def scores(
    predicted: npt.NDArray[np.floating], human: npt.NDArray[np.floating]
) -> dict[str, float]:
    return {
        "r": pearson(predicted, human),
        "spearman": spearman(predicted, human),
        "mae": float(np.mean(np.abs(np.asarray(predicted) - np.asarray(human)))),
    }


def bootstrap_r_interval(
    predicted: npt.NDArray[np.floating], human: npt.NDArray[np.floating], *, samples: int, seed: int
) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    n = len(human)
    values = [
        pearson(predicted[idx], human[idx])
        for idx in (rng.integers(0, n, n) for _ in range(samples))
    ]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def by_kind(
    predicted: npt.NDArray[np.floating], human: npt.NDArray[np.floating], kinds: npt.NDArray[Any]
) -> dict[str, dict[str, float]]:
    result = {"all": scores(predicted, human)}
    for kind in ("word", "other"):
        mask = kinds == kind
        if mask.sum() >= 3:
            result[kind] = scores(predicted[mask], human[mask])
    return result


def baselines(
    vectors: npt.NDArray[np.float32],
    y: npt.NDArray[np.float64],
    train: npt.NDArray[np.intp],
    test: npt.NDArray[np.intp],
    kinds: npt.NDArray[Any],
    seed: int,
) -> dict[str, Any]:
    from emily.config import load_settings
    from emily.memory.embedding.factory import create_embedder

    weights, intercept, alpha = ridge_cv(vectors[train], y[train], seed=seed)
    ridge = np.clip(vectors[test] @ weights + intercept, -1, 1)
    embedder = create_embedder(load_settings())
    axis = AnchorAxis.fit(embedder.embed, "valence", vectors[train])
    anchors = axis.score(vectors[test])
    return {
        "ridge": {**by_kind(ridge, y[test], kinds[test]), "alpha": alpha},
        "anchor": by_kind(anchors, y[test], kinds[test]),
    }


def evaluate(layout: Layout) -> dict[str, Any]:
    params = load_params(layout.params)
    frame = dataset.read(layout.lexicon, layout.lexicon_meta)
    vectors = load_embeddings(layout, len(frame))
    y = frame["valence"].to_numpy(dtype=np.float64)
    kinds = frame["kind"].to_numpy()
    test = np.flatnonzero((frame["split"] == "test").to_numpy())
    train = np.flatnonzero(
        ((frame["split"] == "train") & frame["kind"].isin(params.train.kinds)).to_numpy()
    )
    model = KernelRidgeAppraiser.load(layout.model_dir)
    predicted = model.predict(vectors[test])
    ratings = np.array(frame["ratings"].tolist(), dtype=np.float64)
    low, high = bootstrap_r_interval(
        predicted, y[test], samples=params.evaluate.bootstrap, seed=params.evaluate.seed
    )
    report = {
        "model": {**by_kind(predicted, y[test], kinds[test]), "r_ci95": [low, high]},
        "ceiling": {
            "split_half_test": split_half_reliability(ratings[test], seed=params.evaluate.seed),
            "split_half_all": split_half_reliability(ratings, seed=params.evaluate.seed),
        },
        "baselines": baselines(vectors, y, train, test, kinds, params.evaluate.seed),
        "test_rows": len(test),
        "test_rows_by_kind": {k: int((kinds[test] == k).sum()) for k in ("word", "other")},
        "min_r": params.evaluate.min_r,
    }
    write_plots(layout, frame.iloc[test], predicted)
    return report


def write_plots(layout: Layout, rows: Any, predicted: npt.NDArray[np.float64]) -> None:
    """CSV data for ``dvc plots show`` (templates in dvc.yaml)."""
    layout.plots.mkdir(parents=True, exist_ok=True)
    table = rows[["token", "kind", "valence"]].rename(columns={"valence": "human"})
    table = table.assign(predicted=predicted, residual=predicted - table["human"])
    table.to_csv(layout.plots / "predictions.csv", index=False)
    summary = (
        table.assign(abs_residual=table["residual"].abs())
        .groupby("kind", as_index=False)["abs_residual"]
        .mean()
    )
    summary.to_csv(layout.plots / "residuals_by_kind.csv", index=False)


def flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    """``eval.<who>.<kind>.<metric>`` for MLflow (and registry tags)."""
    metrics: dict[str, float] = {}
    for who, section in (("model", report["model"]), *report["baselines"].items()):
        for kind, values in section.items():
            if isinstance(values, dict):
                for name, value in values.items():
                    metrics[f"eval.{who}.{kind}.{name}"] = float(value)
    metrics["eval.ceiling.split_half"] = float(report["ceiling"]["split_half_test"])
    return metrics


def evaluate_and_log(layout: Layout) -> None:
    import mlflow

    from emily.config import load_settings
    from emily.mlops.tracking import connect

    report = evaluate(layout)
    (layout.metrics).mkdir(parents=True, exist_ok=True)
    (layout.metrics / "eval.json").write_text(
        json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    run = json.loads(layout.run_file.read_text(encoding="utf-8"))
    connect(load_settings())
    with mlflow.start_run(run_id=run["run_id"]):
        mlflow.log_metrics(flat_metrics(report))
        mlflow.log_artifact(str(layout.metrics / "eval.json"), artifact_path="evaluation")
        mlflow.log_artifact(str(layout.plots / "predictions.csv"), artifact_path="evaluation")
    r = report["model"]["all"]["r"]
    if not r >= report["min_r"]:
        raise EvaluationGateError(
            f"held-out r {r:.3f} is below the gate {report['min_r']:.3f}",
            field="params.yaml:evaluate.min_r",
        )
