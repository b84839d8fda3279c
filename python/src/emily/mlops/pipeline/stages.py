"""The stages DVC runs (``python -m emily.mlops.pipeline <stage>``), each reading its inputs
and ``params.yaml`` from the pipeline directory and writing only its declared outputs."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from emily.mlops.pipeline import dataset
from emily.mlops.pipeline.layout import Layout
from emily.mlops.pipeline.params import load_params
from emily.telemetry.logs import get_logger

log = get_logger("mlops.pipeline")


def file_md5(path: Path) -> str:
    """The md5 DVC records for a file output (its content's md5)."""
    digest = hashlib.md5()  # noqa: S324 - DVC's content address, not a security hash
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def prepare(layout: Layout) -> None:
    """Read the lexicon from the installed wheel (plus ``data/extra/*.jsonl``), normalise,
    derive kind and split, write Parquet and its content hash."""
    from emily.mlops.appraisal.lexicon import installed_lexicon

    params = load_params(layout.params).prepare
    source = installed_lexicon()
    frame = dataset.build(
        source,
        layout.extra,
        test_fraction=params.test_fraction,
        seed=params.seed,
        max_rows=params.max_rows,
        lexicon_kinds=params.lexicon_kinds,
    )
    layout.lexicon.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(layout.lexicon, index=False)
    _write_json(
        layout.lexicon_meta,
        {
            "rows": len(frame),
            "rows_by_source": {str(k): int(v) for k, v in frame["source"].value_counts().items()},
            "content_sha256": dataset.frame_hash(frame),
            "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "source": "vadersentiment wheel: vaderSentiment/vader_lexicon.txt",
            "duplicates_kept_last": dataset.duplicated_tokens(source),
        },
    )
    log.info("prepared", rows=len(frame))


def validate(layout: Layout) -> None:
    from emily.mlops.pipeline.validation import check, raise_if_failed

    params = load_params(layout.params).validate_
    frame = dataset.read(layout.lexicon, layout.lexicon_meta)
    report = check(frame, params)
    _write_json(layout.metrics / "validation.json", report)
    raise_if_failed(report)


def embed(layout: Layout) -> None:
    """Every token's MiniLM embedding, in the table's row order (cached by DVC)."""
    from emily.config import load_settings
    from emily.memory.embedding.factory import create_embedder

    params = load_params(layout.params).embed
    frame = dataset.read(layout.lexicon, layout.lexicon_meta)
    embedder = create_embedder(load_settings())
    texts = frame["token"].tolist()
    chunks = [
        embedder.embed(texts[i : i + params.batch_size])
        for i in range(0, len(texts), params.batch_size)
    ]
    matrix = np.concatenate(chunks).astype(np.float32)
    layout.embeddings.parent.mkdir(parents=True, exist_ok=True)
    np.save(layout.embeddings, matrix)
    log.info("embedded", rows=len(matrix), dim=matrix.shape[1])


def load_embeddings(layout: Layout, rows: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    from emily.mlops.pipeline.dataset import DatasetError

    try:
        matrix = np.load(layout.embeddings, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {layout.embeddings}: {exc}") from exc
    if matrix.shape[0] != rows:
        raise DatasetError(
            f"{layout.embeddings} has {matrix.shape[0]} rows, the dataset {rows}",
            hint="rerun `dvc repro embed`",
        )
    return np.asarray(matrix, dtype=np.float32)


def drift(layout: Layout) -> None:
    """Is the held-out split like the training split (it should be), and is new labelled data
    like the data the model knows? Per-feature tests and an embedding-space MMD test."""
    import pandas as pd

    from emily.drift.embedding import mmd_test
    from emily.drift.report import combine, feature_report

    params = load_params(layout.params).drift
    frame = dataset.read(layout.lexicon, layout.lexicon_meta)
    vectors = load_embeddings(layout, len(frame))
    frame = frame.assign(length=frame["token"].str.len())
    rng = np.random.default_rng(params.seed)
    comparisons: dict[str, Any] = {}
    reference_mask = (frame["split"] == "train") & (frame["source"] == "vader")
    candidates = {
        "test_vs_train": (frame["split"] == "test") & (frame["source"] == "vader"),
        "extra_vs_train": frame["source"] == "extra",
    }
    for name, mask in candidates.items():
        if int(mask.sum()) < 10:
            comparisons[name] = {"skipped": f"{int(mask.sum())} rows (need 10)"}
            continue
        ref_idx = np.flatnonzero(reference_mask.to_numpy())
        cur_idx = np.flatnonzero(mask.to_numpy())
        ref_idx = rng.choice(ref_idx, size=min(params.sample, len(ref_idx)), replace=False)
        cur_idx = rng.choice(cur_idx, size=min(params.sample, len(cur_idx)), replace=False)
        columns = ["valence", "kind", "length"]
        features = feature_report(
            pd.DataFrame(frame.iloc[ref_idx][columns]),
            pd.DataFrame(frame.iloc[cur_idx][columns]),
            alpha=params.alpha,
        )
        embedding = mmd_test(
            vectors[ref_idx],
            vectors[cur_idx],
            alpha=params.alpha,
            permutations=params.permutations,
            seed=params.seed,
        )
        report = combine([*features.results, embedding], alpha=params.alpha)
        comparisons[name] = report.model_dump(mode="json")
    _write_json(layout.metrics / "drift.json", {"comparisons": comparisons})


def train(layout: Layout) -> None:
    from emily.mlops.training import train_and_log

    started = time.perf_counter()
    train_and_log(layout)
    log.info("trained", seconds=round(time.perf_counter() - started, 1))


def evaluate(layout: Layout) -> None:
    from emily.mlops.evaluation import evaluate_and_log

    evaluate_and_log(layout)


STAGES = {
    "prepare": prepare,
    "validate": validate,
    "embed": embed,
    "drift": drift,
    "train": train,
    "evaluate": evaluate,
}
