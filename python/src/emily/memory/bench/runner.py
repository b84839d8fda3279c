"""``run_benchmark``: ground truth, then every engine on the same data, one report."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from emily.config import Settings
from emily.locator import postgres_admin_dsn
from emily.memory.bench import data, faiss_engine, pg
from emily.memory.bench.errors import BenchConfigError
from emily.memory.bench.harness import Client, measure
from emily.memory.bench.models import (
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_EFS,
    DEFAULT_EXACT_QUERIES,
    DEFAULT_M,
    ENGINES,
    STOCK_EF_CONSTRUCTION,
    STOCK_M,
    BenchReport,
    BenchResult,
    Engine,
    EngineBuild,
    Metric,
    Quantization,
)
from emily.memory.bench.stock import stock_postgres

WARMUP_QUERIES = 200


class _Steps:
    """A Rich progress bar over sweep points (or nothing)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.progress = (
            Progress(
                TextColumn("{task.description:<44}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            if enabled
            else None
        )
        self.task = self.progress.add_task("preparing", total=total) if self.progress else None

    def __enter__(self) -> _Steps:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def phase(self, text: str) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=text)

    def step(self) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task)


def _check_options(
    k: int,
    efs: Sequence[int],
    clients: Sequence[int],
    quantization: Quantization,
    rerank: int | None,
    m: int,
    ef_construction: int,
    engines: Sequence[str],
) -> tuple[Engine, ...]:
    if not efs or any(not 1 <= ef <= 1000 for ef in efs):
        raise BenchConfigError("each ef must be within 1..1000 (pgvector's limit)", field="ef")
    if not clients or any(c < 1 for c in clients):
        raise BenchConfigError("client counts must be at least 1", field="clients")
    if not 2 <= m <= 100:
        raise BenchConfigError(f"m must be within 2..100, got {m}", field="m")
    if not 4 <= ef_construction <= 1000 or ef_construction < 2 * m:
        raise BenchConfigError(
            f"ef_construction must be within 4..1000 and at least 2*m, got {ef_construction}",
            field="ef_construction",
        )
    if rerank is not None and quantization != "binary":
        raise BenchConfigError("--rerank only applies to --quantization binary", field="rerank")
    if rerank is not None and rerank < k:
        raise BenchConfigError(f"rerank ({rerank}) must be at least k ({k})", field="rerank")
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        raise BenchConfigError(
            f"unknown engine(s) {', '.join(unknown) or '(none given)'}; "
            f"known: {', '.join(ENGINES)}",
            field="engines",
        )
    return tuple(e for e in ENGINES if e in engines)


def _machine() -> dict[str, str]:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": str(os.cpu_count()),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory"] = line.split(":", 1)[1].strip()
                break
    except OSError:  # pragma: no cover - not Linux
        pass
    return info


class _Run:
    """State shared by the engines of one run."""

    def __init__(
        self,
        base: np.ndarray,
        queries: np.ndarray,
        truth: np.ndarray,
        metric: Metric,
        k: int,
        efs: Sequence[int],
        clients: Sequence[int],
        exact_queries: int,
        steps: _Steps,
    ) -> None:
        self.base, self.queries, self.truth = base, queries, truth
        self.metric, self.k, self.efs, self.clients = metric, k, efs, clients
        self.exact_queries = exact_queries
        self.steps = steps
        self.results: list[BenchResult] = []
        self.builds: list[EngineBuild] = []

    def point(
        self,
        engine: Engine,
        ef: int | None,
        clients: int,
        factory: Callable[[], Client],
        count: int,
        rerank: int | None = None,
        server_stats: Callable[[], tuple[int, float] | None] | None = None,
    ) -> BenchResult:
        self.steps.phase(f"{engine} ef={ef if ef is not None else '-'} clients={clients}")
        before = server_stats() if server_stats else None
        measured = measure(factory, count, clients, self.k)
        after = server_stats() if server_stats else None
        server_ms = None
        if before is not None and after is not None and after[0] > before[0]:
            server_ms = (after[1] - before[1]) / (after[0] - before[0])
        result = BenchResult(
            engine=engine,
            ef=ef,
            clients=clients,
            recall=data.recall(
                self.base, self.queries[:count], self.truth[:count], measured.found, self.metric
            ),
            qps=measured.qps,
            p50_ms=measured.percentile_ms(50),
            p99_ms=measured.percentile_ms(99),
            queries=count,
            rerank=rerank,
            server_mean_ms=server_ms,
        )
        self.results.append(result)
        self.steps.step()
        return result

    def chosen_ef(self, engine: Engine) -> int:
        """The smallest ef reaching recall 0.99 with one client, else the largest swept."""
        hits = [
            r.ef
            for r in self.results
            if r.engine == engine and r.clients == 1 and r.ef is not None and r.recall >= 0.99
        ]
        return min(hits) if hits else max(self.efs)


def _pg_factory(
    dsn: str, statement: bytes, oid: int, encoded: list[bytes], session: dict[str, str]
) -> Callable[[], Client]:
    return lambda: pg.PgClient(dsn, statement, oid, encoded, session)


def _sweep_pg(
    run: _Run,
    engine: Engine,
    dsn: str,
    layout: pg.Layout,
    rerank: int | None,
    build: EngineBuild,
    stats: bool,
) -> None:
    dim = run.base.shape[1]
    statement = pg.query_sql(layout, dim, run.k, rerank)
    statement_bytes = pg.render(dsn, statement)
    oid = pg.type_oid(dsn, layout.storage)
    encoded = pg.encode(run.queries, layout.storage)
    server_stats = (lambda: pg.statement_stats(dsn)) if stats else None
    if engine == "pgvector-exact":
        session = {"enable_indexscan": "off"}
        count = min(run.exact_queries, len(run.queries))
        for clients in run.clients:
            factory = _pg_factory(dsn, statement_bytes, oid, encoded, session)
            run.point(engine, None, clients, factory, count, None, server_stats)
    else:
        # On small tables the planner prefers a sequential scan; an HNSW engine must use HNSW.
        warm = {"enable_seqscan": "off", "hnsw.ef_search": str(max(run.efs))}
        run.steps.phase(f"{engine} warm-up")
        measure(
            _pg_factory(dsn, statement_bytes, oid, encoded, warm),
            min(WARMUP_QUERIES, len(run.queries)),
            1,
            run.k,
        )
        for ef in run.efs:
            for clients in run.clients:
                session = {**warm, "hnsw.ef_search": str(ef)}
                factory = _pg_factory(dsn, statement_bytes, oid, encoded, session)
                run.point(engine, ef, clients, factory, len(run.queries), rerank, server_stats)
        session = {**warm, "hnsw.ef_search": str(run.chosen_ef(engine))}
    build.explain = pg.explain(dsn, statement, encoded[0], oid, session)
    run.builds.append(build)


def _run_tuned(
    run: _Run,
    settings: Settings,
    engines: tuple[Engine, ...],
    quantization: Quantization,
    rerank: int | None,
    m: int,
    ef_construction: int,
) -> None:
    """pgvector-hnsw (and pgvector-exact) on the stack's own, tuned server."""
    storage: pg.Storage = "vector" if quantization == "vector" else "halfvec"
    layout = pg.Layout(storage, run.metric, cosine_as_ip=True, binary=quantization == "binary")
    dim = run.base.shape[1]
    with pg.scratch_database(postgres_admin_dsn(settings), "tuned") as dsn:
        stats = pg.try_extension(dsn, "pg_stat_statements")
        can_prewarm = pg.try_extension(dsn, "pg_prewarm")
        run.steps.phase("pgvector: loading (binary COPY)")
        load_seconds = pg.load(dsn, run.base, storage)
        server = pg.server_settings(dsn)
        if "pgvector-hnsw" in engines:
            run.steps.phase("pgvector-hnsw: building HNSW")
            seconds, size = pg.build_index(dsn, layout, dim, m, ef_construction)
            if can_prewarm:
                pg.prewarm(dsn)
            build = EngineBuild(
                engine="pgvector-hnsw",
                storage=storage,
                opclass=layout.opclass,
                distance=layout.distance,
                m=m,
                ef_construction=ef_construction,
                load_seconds=load_seconds,
                build_seconds=seconds,
                index_bytes=size,
                table_bytes=pg.relation_bytes(dsn),
                server="stack (tuned: emily.conf)",
                server_settings=server,
            )
            _sweep_pg(run, "pgvector-hnsw", dsn, layout, rerank, build, stats)
        if "pgvector-exact" in engines:
            exact_layout = pg.Layout(storage, run.metric, cosine_as_ip=True)
            build = EngineBuild(
                engine="pgvector-exact",
                storage=storage,
                distance=exact_layout.distance + " (sequential scan)",
                load_seconds=load_seconds,
                table_bytes=pg.relation_bytes(dsn),
                server="stack (tuned: emily.conf)",
                server_settings=server,
            )
            _sweep_pg(run, "pgvector-exact", dsn, exact_layout, None, build, stats)


def _run_stock(run: _Run, settings: Settings) -> None:
    """pgvector-default: vector(dim), canonical opclass, m=16/ef_construction=64, stock server."""
    layout = pg.Layout("vector", run.metric, cosine_as_ip=False)
    dim = run.base.shape[1]
    run.steps.phase("pgvector-default: starting stock PostgreSQL")
    with stock_postgres(settings) as admin_dsn, pg.scratch_database(admin_dsn, "stock") as dsn:
        run.steps.phase("pgvector-default: loading (binary COPY)")
        load_seconds = pg.load(dsn, run.base, "vector")
        run.steps.phase("pgvector-default: building HNSW")
        # Only the build gets the stack's maintenance_work_mem: with the stock 64MB a large
        # graph spills to disk and the reference build alone would take many minutes.
        seconds, size = pg.build_index(
            dsn,
            layout,
            dim,
            STOCK_M,
            STOCK_EF_CONSTRUCTION,
            maintenance_work_mem=settings.stack.postgres_maintenance_work_mem,
        )
        build = EngineBuild(
            engine="pgvector-default",
            storage="vector",
            opclass=layout.opclass,
            distance=layout.distance,
            m=STOCK_M,
            ef_construction=STOCK_EF_CONSTRUCTION,
            load_seconds=load_seconds,
            build_seconds=seconds,
            index_bytes=size,
            table_bytes=pg.relation_bytes(dsn),
            server="stock PostgreSQL (initdb defaults; build-only maintenance_work_mem "
            f"{settings.stack.postgres_maintenance_work_mem})",
            server_settings=pg.server_settings(dsn),
        )
        _sweep_pg(run, "pgvector-default", dsn, layout, None, build, stats=False)


def _run_faiss(run: _Run, m: int, ef_construction: int) -> None:
    run.steps.phase("faiss: building IndexHNSWFlat")
    index, seconds, size = faiss_engine.build(run.base, run.metric, m, ef_construction)
    for ef in run.efs:
        faiss_engine.set_ef(index, ef)
        for clients in run.clients:
            factory: Callable[[], Client] = lambda: faiss_engine.FaissClient(  # noqa: E731
                index, run.queries, run.k
            )
            run.point("faiss", ef, clients, factory, len(run.queries))
    run.builds.append(
        EngineBuild(
            engine="faiss",
            storage="float32",
            distance="inner product" if run.metric == "cosine" else "l2",
            m=m,
            ef_construction=ef_construction,
            build_seconds=seconds,
            index_bytes=size,
            server="in-process (faiss-cpu IndexHNSWFlat)",
        )
    )


def _best_at_target(
    results: Sequence[BenchResult], target: float = 0.99
) -> dict[str, float | None]:
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
    progress: bool = True,
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
    chosen = _check_options(k, efs, clients, quantization, rerank, m, ef_construction, engines)
    if exact_queries < 1:
        raise BenchConfigError("exact_queries must be at least 1", field="exact_queries")
    base = data.prepare(base, metric)
    queries = data.prepare(queries, metric)
    timer = time.perf_counter()
    truth = data.ground_truth(base, queries, k, metric)
    truth_seconds = time.perf_counter() - timer
    hnsw_engines = [e for e in chosen if e != "pgvector-exact"]
    total = len(hnsw_engines) * len(efs) * len(clients) + (
        len(clients) if "pgvector-exact" in chosen else 0
    )
    with _Steps(progress, total) as steps:
        run = _Run(base, queries, truth, metric, k, efs, clients, exact_queries, steps)
        if "pgvector-hnsw" in chosen or "pgvector-exact" in chosen:
            _run_tuned(run, settings, chosen, quantization, rerank, m, ef_construction)
        if "pgvector-default" in chosen:
            _run_stock(run, settings)
        if "faiss" in chosen:
            _run_faiss(run, m, ef_construction)
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
        best_at_target=_best_at_target(run.results),
        machine=_machine(),
        started_at=started_at,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
