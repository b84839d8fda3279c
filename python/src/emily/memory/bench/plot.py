"""Recall-vs-QPS chart (matplotlib, headless Agg backend)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from emily.memory.bench.models import BenchReport


def plot(report: BenchReport, path: Path) -> Path:
    """One line per engine and client count; QPS on a log axis, the 0.99 target marked."""
    lines: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    for result in report.results:
        lines[(result.engine, result.clients)].append((result.recall, result.qps))
    figure, axes = plt.subplots(figsize=(8, 5.5))
    for (engine, clients), points in sorted(lines.items()):
        points.sort()
        recalls, qps = zip(*points, strict=True)
        style = "o" if len(points) == 1 else "o-"
        axes.plot(recalls, qps, style, label=f"{engine}, {clients} client(s)", markersize=4)
    axes.axvline(0.99, color="grey", linestyle=":", linewidth=1)
    axes.set_yscale("log")
    axes.set_xlabel(f"recall@{report.k}")
    axes.set_ylabel("queries per second (log)")
    rerank = f", rerank {report.rerank}" if report.rerank else ""
    axes.set_title(
        f"n={report.n} dim={report.dim} {report.metric}, {report.quantization}{rerank}, "
        f"m={report.m} ef_construction={report.ef_construction}",
        fontsize=10,
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
