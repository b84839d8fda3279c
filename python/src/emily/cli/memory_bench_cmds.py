"""``emily memory bench``: the benchmark from the command line (JSON, PNG and a Rich table)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from emily.cli.context import settings_of
from emily.memory.bench.defaults import (
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_EFS,
    DEFAULT_EXACT_QUERIES,
    DEFAULT_M,
    ENGINES,
    Metric,
    Quantization,
)
from emily.ui import escape, parse_ints, progress

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from emily.memory.bench.models import BenchReport

console = Console()


class RichSteps:
    """The benchmark's progress as one Rich bar on stderr (``emily.memory.bench.steps.Steps``)."""

    def __init__(self, target: Console) -> None:
        self._bar: Progress = progress(target)
        self._task: TaskID | None = None

    def begin(self, total: int) -> None:
        self._task = self._bar.add_task("preparing", total=total)
        self._bar.start()

    def phase(self, text: str) -> None:
        if self._task is not None:
            self._bar.update(self._task, description=escape(text))

    def step(self) -> None:
        if self._task is not None:
            self._bar.advance(self._task)

    def end(self) -> None:
        self._bar.stop()


def render_table(report: BenchReport) -> Table:
    table = Table(
        "engine",
        "ef",
        "clients",
        "recall",
        "QPS",
        "p50 ms",
        "p99 ms",
        "server ms",
        title=(
            f"n={report.n} dim={report.dim} k={report.k} {report.metric} {report.quantization}"
            f" m={report.m} ef_construction={report.ef_construction}"
            f" build {report.build_seconds:.1f}s index {report.index_bytes / 2**20:.1f} MiB"
        ),
    )
    for r in report.results:
        table.add_row(
            r.engine,  # one of ENGINES, never user text
            "-" if r.ef is None else str(r.ef),
            str(r.clients),
            f"[green]{r.recall:.4f}[/]" if r.recall >= 0.99 else f"{r.recall:.4f}",
            f"{r.qps:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            "" if r.server_mean_ms is None else f"{r.server_mean_ms:.2f}",
        )
    return table


def add_to(memory_app: typer.Typer) -> None:
    """Add ``bench`` to the ``emily memory`` sub-app."""
    memory_app.command()(bench)


def bench(
    ctx: typer.Context,
    base: Annotated[Path, typer.Option("--base", help="Base vectors, .npy (n x dim).")],
    queries: Annotated[Path, typer.Option("--queries", help="Query vectors, .npy.")],
    json_out: Annotated[Path, typer.Option("--json", help="Write the JSON report here.")],
    metric: Annotated[Metric, typer.Option("--metric", help="cosine or l2.")] = "cosine",
    k: Annotated[int, typer.Option("--k", help="Neighbours per query.")] = 10,
    ef: Annotated[
        str, typer.Option("--ef", help="hnsw.ef_search values, comma-separated.")
    ] = ",".join(map(str, DEFAULT_EFS)),
    clients: Annotated[
        str, typer.Option("--clients", help="Concurrent client counts, comma-separated.")
    ] = "1,4",
    quantization: Annotated[
        Quantization, typer.Option("--quantization", help="halfvec, vector or binary.")
    ] = "halfvec",
    rerank: Annotated[
        int | None,
        typer.Option("--rerank", help="binary: re-rank this many candidates exactly."),
    ] = None,
    m: Annotated[int, typer.Option("--m", help="HNSW m of pgvector-hnsw and faiss.")] = (DEFAULT_M),
    ef_construction: Annotated[
        int, typer.Option("--ef-construction", help="HNSW ef_construction.")
    ] = DEFAULT_EF_CONSTRUCTION,
    engines: Annotated[
        str, typer.Option("--engines", help="Comma-separated subset of the engines.")
    ] = ",".join(ENGINES),
    queries_limit: Annotated[
        int | None, typer.Option("--queries-limit", help="Use only the first N queries.")
    ] = None,
    exact_queries: Annotated[
        int, typer.Option("--exact-queries", help="Queries for the (slow) exact scan.")
    ] = DEFAULT_EXACT_QUERIES,
    plot_out: Annotated[
        Path | None, typer.Option("--plot", help="Recall-vs-QPS PNG (default: next to JSON).")
    ] = None,
) -> None:
    """Recall@k / QPS / latency of pgvector HNSW (tuned and stock), exact scan and faiss."""
    from emily.memory.bench.data import load_matrix
    from emily.memory.bench.errors import BenchConfigError
    from emily.memory.bench.plot import plot
    from emily.memory.bench.runner import run_benchmark

    settings = settings_of(ctx)
    base_matrix = load_matrix(base)
    query_matrix = load_matrix(queries)
    if queries_limit is not None:
        if queries_limit < 1:
            raise BenchConfigError("must be at least 1", field="--queries-limit")
        query_matrix = query_matrix[:queries_limit]
    report = run_benchmark(
        settings,
        base_matrix,
        query_matrix,
        metric=metric,
        k=k,
        efs=parse_ints(ef, "--ef", error=BenchConfigError),
        clients=parse_ints(clients, "--clients", error=BenchConfigError),
        quantization=quantization,
        rerank=rerank,
        m=m,
        ef_construction=ef_construction,
        engines=[e.strip() for e in engines.split(",") if e.strip()],
        steps=RichSteps(Console(stderr=True)),
        exact_queries=exact_queries,
        names=(str(base), str(queries)),
    )
    report.base_file, report.queries_file = str(base), str(queries)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(report.model_dump_json(indent=1), encoding="utf-8")
    png = plot(report, plot_out or json_out.with_suffix(".png"))
    console.print(render_table(report))
    console.print(f"wrote {escape(str(json_out))} and {escape(str(png))}")
