"""The state one run shares between its engine drivers: the data, the ground truth, the sweep
parameters, and the results and builds collected so far."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from emily.memory.bench import data
from emily.memory.bench.defaults import Engine, Metric
from emily.memory.bench.harness import Client, measure
from emily.memory.bench.models import BenchResult, EngineBuild
from emily.memory.bench.steps import Steps

ServerStats = Callable[[], tuple[int, float] | None]


class Sweep:
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
        steps: Steps,
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
        server_stats: ServerStats | None = None,
    ) -> BenchResult:
        """Measure one sweep point and record it."""
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
