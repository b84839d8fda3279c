"""The ``train`` stage: select hyper-parameters by cross-validation on the training split,
fit the kernel-ridge appraiser, save it as a DVC output, and log the run to MLflow (params,
metrics, structured tags, the model as an MLflow pyfunc with signature and input example)."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from emily.mlops import lineage
from emily.mlops.appraisal.model import KernelRidgeAppraiser, select_hyperparameters
from emily.mlops.pipeline import dataset
from emily.mlops.pipeline.layout import Layout
from emily.mlops.pipeline.params import load_params
from emily.mlops.pipeline.stages import file_md5, load_embeddings

PYFUNC_CODE = "emily/mlops/appraisal/pyfunc_model.py"


def input_md5s(layout: Layout) -> dict[str, str]:
    return {
        "lexicon": file_md5(layout.lexicon),
        "embeddings": file_md5(layout.embeddings),
        "params": file_md5(layout.params),
    }


def fit(layout: Layout) -> tuple[KernelRidgeAppraiser, dict[str, Any]]:
    params = load_params(layout.params).train
    frame = dataset.read(layout.lexicon, layout.lexicon_meta)
    vectors = load_embeddings(layout, len(frame))
    rows = np.flatnonzero(
        ((frame["split"] == "train") & frame["kind"].isin(params.kinds)).to_numpy()
    )
    y = frame["valence"].to_numpy(dtype=np.float64)
    rng = np.random.default_rng(params.seed)
    cv_rows = rng.choice(rows, size=min(params.cv_rows, len(rows)), replace=False)
    started = time.perf_counter()
    gamma, alpha, scores = select_hyperparameters(
        vectors[cv_rows],
        y[cv_rows],
        gammas=params.gammas,
        alphas=params.alphas,
        folds=params.folds,
        seed=params.seed,
    )
    cv_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model = KernelRidgeAppraiser.fit(vectors[rows], y[rows], gamma=gamma, alpha=alpha)
    facts = {
        "gamma": gamma,
        "alpha": alpha,
        "cv_scores": scores,
        "cv_best_r": max(scores.values()),
        "cv_seconds": cv_seconds,
        "fit_seconds": time.perf_counter() - started,
        "train_rows": len(rows),
        "train_kinds": list(params.kinds),
    }
    return model, facts


def train_and_log(layout: Layout) -> None:
    import mlflow

    from emily.config import load_settings
    from emily.mlops.tracking import connect

    model, facts = fit(layout)
    md5s = input_md5s(layout)
    model.save(layout.model_dir, card={k: facts[k] for k in ("train_rows", "train_kinds")})
    settings = load_settings()
    connect(settings)
    mlflow.set_experiment(settings.mlops.experiment)
    tags = lineage.structured_tags(layout.root, md5s)
    with mlflow.start_run(tags=tags) as run:
        params = load_params(layout.params).train
        mlflow.log_params(
            {
                "gamma": facts["gamma"],
                "alpha": facts["alpha"],
                "grid_gammas": params.gammas,
                "grid_alphas": params.alphas,
                "folds": params.folds,
                "cv_rows": params.cv_rows,
                "train_kinds": ",".join(params.kinds),
                "seed": params.seed,
            }
        )
        # One batched call: per-metric calls cost ~40 ms each against the server.
        mlflow.log_metrics(
            {
                "cv_best_r": facts["cv_best_r"],
                "cv_seconds": facts["cv_seconds"],
                "fit_seconds": facts["fit_seconds"],
                "train_rows": facts["train_rows"],
            }
        )
        info = mlflow.pyfunc.log_model(
            name="appraisal",
            python_model=_pyfunc_code_path(),
            artifacts={"appraisal": str(layout.model_dir)},
            signature=_signature(),
            input_example={"text": ["what a lovely day", ":("]},
            pip_requirements=["emily-sovereign", f"numpy=={np.__version__}"],
        )
        run_id = run.info.run_id
    layout.run_file.write_text(
        json.dumps(
            {
                "run_id": run_id,
                "model_uri": info.model_uri,
                "experiment": settings.mlops.experiment,
                "md5": md5s,
                **{k: v for k, v in facts.items() if k != "cv_scores"},
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )


def _pyfunc_code_path() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parents[2] / PYFUNC_CODE)


def _signature() -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string", "text")]),
        outputs=Schema([ColSpec("double", "valence")]),
    )
