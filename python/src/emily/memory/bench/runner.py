"""``run_benchmark``: validate, compute the ground truth, then run every chosen engine's driver
on the same data and collect one report. Drawing progress is the caller's (``steps``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from emily.config import Settings
from emily.memory.bench import data
from emily.memory.bench.defaults import (
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_EFS,
    DEFAULT_EXACT_QUERIES,
    DEFAULT_M,
    ENGINES,
    Metric,
    Quantization,
)
from emily.memory.bench.drive_faiss import run_faiss
from emily.memory.bench.drive_stock import run_stock
from emily.memory.bench.drive_tuned import run_tuned
from emily.memory.bench.machine import machine_info
from emily.memory.bench.models import BenchReport, BenchResult
from emily.memory.bench.options import check_options
from emily.memory.bench.steps import NoSteps, Steps
from emily.memory.bench.sweep import Sweep


def best_at_target(results: Sequence[BenchResult], target: float = 0.99) -> dict[str, float | None]:
    """'engine/clients' -> the highest QPS among points reaching ``target`` recall (or None)."""
    best: dict[str, float | None] = {}
    for r in results:
        key = f"{r.engine}/{r.clients}"
        current = best.get(key)
        if r.recall >= target and (current is None or r.qps > current):
            best[key] = r.qps
        else:
            best.setdefault(key, None)
    return best


def run_benchmark(
    settings: Settings,
    base: np.ndarray,
    queries: np.ndarray,
    *,
    metric: Metric,
    k: int = 10,
    efs: Sequence[int] = DEFAULT_EFS,
    clients: Sequence[int] = (1, 4),
    quantization: Quantization = "halfvec",
    rerank: int | None = None,
    m: int = DEFAULT_M,
    ef_construction: int = DEFAULT_EF_CONSTRUCTION,
    engines: Sequence[str] = ENGINES,
    steps: Steps | None = None,
    exact_queries: int = DEFAULT_EXACT_QUERIES,
    names: tuple[str, str] = ("base", "queries"),
) -> BenchReport:
    """Measure recall@k, QPS and latency of every engine on ``base``/``queries``.

    ``names`` label the matrices in errors (the CLI passes the file paths).
    """
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    base = data.validate_matrix(base, names[0])
    queries = data.validate_matrix(queries, names[1])
    data.check_pair(base, queries, k, names)
    chosen = check_options(
        k, efs, clients, quantization, rerank, m, ef_construction, engines, exact_queries
    )
    base = data.prepare(base, metric)
    queries = data.prepare(queries, metric)
    timer = time.perf_counter()
    truth = data.ground_truth(base, queries, k, metric)
    truth_seconds = time.perf_counter() - timer
    hnsw_engines = [e for e in chosen if e != "pgvector-exact"]
    total = len(hnsw_engines) * len(efs) * len(clients) + (
        len(clients) if "pgvector-exact" in chosen else 0
    )
    steps = steps or NoSteps()
    run = Sweep(base, queries, truth, metric, k, efs, clients, exact_queries, steps)
    steps.begin(total)
    try:
        if "pgvector-hnsw" in chosen or "pgvector-exact" in chosen:
            run_tuned(run, settings, chosen, quantization, rerank, m, ef_construction)
        if "pgvector-default" in chosen:
            run_stock(run, settings)
        if "faiss" in chosen:
            run_faiss(run, m, ef_construction)
    finally:
        steps.end()
    ours = next((b for b in run.builds if b.engine == "pgvector-hnsw"), None)
    return BenchReport(
        n=base.shape[0],
        dim=base.shape[1],
        k=k,
        build_seconds=ours.build_seconds if ours else 0.0,
        index_bytes=ours.index_bytes if ours else 0,
        results=run.results,
        metric=metric,
        quantization=quantization,
        rerank=rerank,
        m=m,
        ef_construction=ef_construction,
        queries=len(queries),
        exact_queries=min(exact_queries, len(queries)),
        ground_truth_seconds=truth_seconds,
        builds=run.builds,
        best_at_target=best_at_target(run.results),
        machine=machine_info(),
        started_at=started_at,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
