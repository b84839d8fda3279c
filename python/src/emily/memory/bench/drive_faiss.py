"""Driver: faiss ``IndexHNSWFlat`` in process, the reference for what HNSW can do here."""

from __future__ import annotations

from collections.abc import Callable

from emily.memory.bench import faiss_engine
from emily.memory.bench.harness import Client
from emily.memory.bench.models import EngineBuild
from emily.memory.bench.sweep import Sweep


def run_faiss(run: Sweep, m: int, ef_construction: int) -> None:
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
