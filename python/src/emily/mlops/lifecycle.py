"""The model lifecycle as operations (what ``emily mlops …`` runs): train through the DVC
pipeline and register, compare and promote, roll back, predict, report status and lineage."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from emily.errors import EmilyError
from emily.mlops import registry, versioning
from emily.mlops.pipeline import dataset
from emily.mlops.pipeline.layout import Layout
from emily.mlops.promotion import (
    Comparison,
    apply_promotion,
    check_promotable,
    compare,
)
from emily.mlops.promotion import rollback as rollback_alias
from emily.telemetry.logs import get_logger

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from emily.config import Settings
    from emily.mlops.appraisal.pyfunc_model import AppraisalModel

log = get_logger("mlops.lifecycle")


MIN_COMPARED = 10  # held-out rows below which a correlation comparison says nothing


class AliasNotSetError(EmilyError):
    """No version holds the alias asked for (not an outage: the registry answered)."""


def layout_of(settings: Settings) -> Layout:
    return Layout.of(settings.mlops.pipeline_dir)


def _client(settings: Settings) -> MlflowClient:
    from emily.mlops.tracking import connect

    return connect(settings)


def _read_json(path: Any) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EmilyError(f"cannot read {path}: {exc}", hint="run `emily mlops train`") from exc
    return document


def registry_tags(layout: Layout) -> dict[str, str]:
    """Everything a version carries: validation status, held-out metrics, data hashes, code."""
    from emily.mlops.evaluation import flat_metrics
    from emily.mlops.lineage import structured_tags

    run = _read_json(layout.run_file)
    validation = _read_json(layout.metrics / "validation.json")
    report = _read_json(layout.metrics / "eval.json")
    tags = structured_tags(layout.root, run["md5"])
    tags.update({key: f"{value:.6f}" for key, value in flat_metrics(report).items()})
    tags.update(
        {
            "validation_status": "passed" if validation.get("passed") else "failed",
            "run_id": run["run_id"],
            "train_kinds": ",".join(run.get("train_kinds", [])),
            "gamma": str(run.get("gamma")),
            "alpha": str(run.get("alpha")),
        }
    )
    return tags


def log_dataset(layout: Layout, run_id: str, url: str, md5: str) -> None:
    """``mlflow.log_input``: the training data, digest = DVC md5, source = its remote URL."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    frame = dataset.read(layout.lexicon, layout.lexicon_meta)
    data = from_pandas(
        frame[["token", "kind", "valence", "split"]],
        source=url,
        targets="valence",
        name="vader-lexicon",
        digest=md5[:36],
    )
    with mlflow.start_run(run_id=run_id):
        mlflow.log_input(data, context="training", tags={"dvc_md5": md5})


def train(
    settings: Settings, *, trained_by: str, on_stage: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """``dvc repro`` (no-op when nothing changed), ``dvc push``, then register the trained
    model as ``challenger`` (the first model also as ``champion``). A run already registered
    is not registered twice."""
    layout = layout_of(settings)
    client = _client(settings)  # fail fast, before minutes of pipeline, when MLflow is down
    versioning.ensure_remote(settings, layout)
    versioning.repro(settings, layout, on_stage)
    run = _read_json(layout.run_file)
    if not _run_exists(client, run["run_id"]):
        # The workspace's model was trained against another tracking server (another state
        # dir, a wiped MLflow): its run is not here, so train (and evaluate) again, here.
        log.info("run_not_on_this_server", run_id=run["run_id"])
        versioning.repro(settings, layout, on_stage, force_from="train")
        run = _read_json(layout.run_file)
    versioning.push(settings, layout)
    name = settings.mlops.model_name
    existing = [
        mv for mv in client.search_model_versions(f"name = '{name}'") if mv.run_id == run["run_id"]
    ]
    if existing:
        # (search results may lack aliases: read the version itself)
        info = registry.get_version(client, name, int(existing[0].version))
        if not info.aliases:
            # The pipeline is back at a model registered before (same data, parameters and
            # code: DVC restored its outputs) that no alias names now: it is the challenger
            # again, as a new registration would be.
            info = registry.realias_challenger(client, name, info, by=trained_by)
        return {"version": info.version, "registered": False, "champion": False, **info.summary()}
    url = versioning.data_url(layout, layout.lexicon)
    log_dataset(layout, run["run_id"], url, run["md5"]["lexicon"])
    info, first = registry.register(
        client,
        name,
        model_uri=run["model_uri"],
        run_id=run["run_id"],
        tags={**registry_tags(layout), "dataset_url": url},
        trained_by=trained_by,
    )
    return {"version": info.version, "registered": True, "champion": first, **info.summary()}


def _run_exists(client: MlflowClient, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException:
        return False
    return True


# MLflow rebuilds a model from code with a stand-in ``dbutils`` module swapped into
# ``sys.modules`` and restores the old entry afterwards. Two loads at once (the champion's and
# the challenger's followers) interleave the swaps and leave the stand-in there for good, where
# anything that walks ``sys.modules`` (Hypothesis, inspect) trips over it. One load at a time.
_LOAD_LOCK = threading.Lock()


@lru_cache(maxsize=8)
def _load(uri: str) -> AppraisalModel:
    import mlflow

    with _LOAD_LOCK:
        loaded = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    # Models from code are rebuilt from the copy stored with the model, under another module
    # name, so the class is not ours by identity; the interface is what counts.
    if not callable(getattr(loaded, "appraise", None)):
        raise EmilyError(f"{uri} is not an appraisal model", field="model")
    return cast("AppraisalModel", loaded)


def load_model(settings: Settings, ref: str) -> tuple[AppraisalModel, registry.VersionInfo]:
    """``name@alias``, ``name/version``, ``@alias`` or a version number → the model."""
    client = _client(settings)
    name, _, selector = ref.rpartition("@") if "@" in ref else ref.rpartition("/")
    name = name or settings.mlops.model_name
    if "@" in ref:
        info = registry.by_alias(client, name, selector)
        if info is None:
            raise AliasNotSetError(f"{name} has no version with alias '{selector}'", field="model")
    else:
        try:
            version = int(selector)
        except ValueError as exc:
            raise EmilyError(f"not a model reference: {ref!r}", field="model") from exc
        info = registry.get_version(client, name, version)
    return _load(f"models:/{name}/{info.version}"), info


def held_out(
    settings: Settings,
) -> tuple[list[str], np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The current dataset's test split (texts, embeddings, human valence, and each row's
    source: ``vader`` or ``extra``); pulled from the DVC remote when the workspace lacks it."""
    from emily.mlops.pipeline.stages import load_embeddings

    layout = layout_of(settings)
    if not layout.lexicon.is_file() or not layout.embeddings.is_file():
        versioning.pull(settings, layout)
    frame = dataset.read(io.BytesIO(versioning.read_versioned(layout, layout.lexicon)))
    vectors = load_embeddings(layout, len(frame))
    test = np.flatnonzero((frame["split"] == "test").to_numpy())
    return (
        frame["token"].iloc[test].tolist(),
        vectors[test],
        frame["valence"].to_numpy(dtype=np.float64)[test],
        frame["source"].to_numpy()[test],
    )


def compare_aliases_on(
    settings: Settings, sources: Sequence[str | None]
) -> dict[str | None, Comparison | None]:
    """Champion vs challenger on the held-out split, once per entry of ``sources``: the rows
    of that source only (``None``: every row). The split is read and each model appraises it
    once; a comparison is ``None`` when an alias is unset or fewer than ``MIN_COMPARED`` rows
    are held out."""
    client = _client(settings)
    name = settings.mlops.model_name
    champion = registry.by_alias(client, name, registry.CHAMPION)
    challenger = registry.by_alias(client, name, registry.CHALLENGER)
    if champion is None or challenger is None:
        return dict.fromkeys(sources)
    texts, vectors, truth, row_sources = held_out(settings)
    champ_model, _ = load_model(settings, f"{name}/{champion.version}")
    chal_model, _ = load_model(settings, f"{name}/{challenger.version}")
    champ_pred = np.asarray(champ_model.appraise(texts, vectors))
    chal_pred = np.asarray(chal_model.appraise(texts, vectors))
    result: dict[str | None, Comparison | None] = {}
    for source in sources:
        rows = np.ones(len(texts), bool) if source is None else row_sources == source
        result[source] = (
            compare(
                champion,
                challenger,
                champ_pred[rows],
                chal_pred[rows],
                truth[rows],
                samples=settings.mlops.bootstrap_samples,
                alpha=settings.mlops.promote_alpha,
            )
            if int(rows.sum()) >= MIN_COMPARED
            else None
        )
    return result


def compare_aliases(settings: Settings) -> Comparison | None:
    """Champion vs challenger on the whole held-out split."""
    return compare_aliases_on(settings, [None])[None]


def promote(
    settings: Settings, *, approved_by: str | None, comparison: Comparison | None = None
) -> dict[str, Any]:
    """Move ``champion`` to the challenger when the comparison says it is better: the held-out
    comparison by default, or the one given (the watch's gate on the new data)."""
    client = _client(settings)
    name = settings.mlops.model_name
    champion = registry.by_alias(client, name, registry.CHAMPION)
    challenger = check_promotable(registry.by_alias(client, name, registry.CHALLENGER), champion)
    if comparison is None and champion is not None:
        comparison = compare_aliases(settings)
    record = apply_promotion(
        client,
        name,
        champion,
        challenger,
        approved_by=approved_by or settings.mlops.approved_by or "",
        comparison=comparison,
    )
    return {
        "promoted": challenger.version,
        "comparison": comparison.as_dict() if comparison else None,
        "audit": record,
    }


def rollback(settings: Settings, *, approved_by: str | None, reason: str) -> dict[str, Any]:
    return rollback_alias(
        _client(settings),
        settings.mlops.model_name,
        approved_by=approved_by or settings.mlops.approved_by or "unknown",
        reason=reason,
    )


def status(settings: Settings) -> dict[str, Any]:
    client = _client(settings)
    name = settings.mlops.model_name
    result: dict[str, Any] = {"model": name}
    for alias in (registry.CHAMPION, registry.CHALLENGER):
        info = registry.by_alias(client, name, alias)
        result[alias] = info.summary() if info else None
    return result


def predict(settings: Settings, ref: str, texts: Sequence[str]) -> tuple[list[float], int]:
    model, info = load_model(settings, ref)
    return [float(v) for v in model.appraise(list(texts))], info.version


def lineage(settings: Settings, version: int) -> dict[str, Any]:
    """data hashes → run → version → aliases."""
    client = _client(settings)
    name = settings.mlops.model_name
    info = registry.get_version(client, name, version)
    run = client.get_run(info.run_id) if info.run_id else None
    audits = sorted(
        (json.loads(v) for k, v in info.tags.items() if k.startswith("audit.")),
        key=lambda a: str(a["at"]),
    )
    return {
        "data": {
            "md5": {
                k.removeprefix("dvc_md5."): v
                for k, v in info.tags.items()
                if k.startswith("dvc_md5.")
            },
            "url": info.tags.get("dataset_url"),
            "inputs": [
                {"name": d.dataset.name, "digest": d.dataset.digest, "source": d.dataset.source}
                for d in (run.inputs.dataset_inputs if run and run.inputs else [])
            ],
        },
        "code": {"git_commit": info.tags.get("git_commit")},
        "run": {
            "id": info.run_id,
            "params": dict(run.data.params) if run else {},
            "metrics": {
                k: v
                for k, v in (run.data.metrics if run else {}).items()
                if k.startswith("eval.model.all")
            },
        },
        "version": info.version,
        "aliases": list(info.aliases),
        "audit": audits,
    }
