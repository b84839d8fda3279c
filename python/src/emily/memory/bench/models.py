"""The benchmark's JSON report (``emily memory bench --json``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from emily.memory.bench.defaults import (
    DEFAULT_EF_CONSTRUCTION as DEFAULT_EF_CONSTRUCTION,
)
from emily.memory.bench.defaults import (
    DEFAULT_EFS as DEFAULT_EFS,
)
from emily.memory.bench.defaults import (
    DEFAULT_EXACT_QUERIES as DEFAULT_EXACT_QUERIES,
)
from emily.memory.bench.defaults import (
    DEFAULT_M as DEFAULT_M,
)
from emily.memory.bench.defaults import (
    ENGINES as ENGINES,
)
from emily.memory.bench.defaults import (
    STOCK_EF_CONSTRUCTION as STOCK_EF_CONSTRUCTION,
)
from emily.memory.bench.defaults import (
    STOCK_M as STOCK_M,
)
from emily.memory.bench.defaults import (
    Engine as Engine,
)
from emily.memory.bench.defaults import (
    Metric as Metric,
)
from emily.memory.bench.defaults import (
    Quantization as Quantization,
)


class BenchResult(BaseModel):
    """One point of the sweep: an engine at one ef_search with a number of concurrent clients."""

    engine: Engine
    ef: int | None
    clients: int
    recall: float = Field(ge=0.0, le=1.0)
    qps: float = Field(ge=0.0)
    p50_ms: float = Field(ge=0.0)
    p99_ms: float = Field(ge=0.0)
    queries: int = Field(ge=1, description="Queries measured at this point.")
    rerank: int | None = None
    server_mean_ms: float | None = Field(
        default=None, description="Mean execution time per query from pg_stat_statements."
    )


class EngineBuild(BaseModel):
    """How one engine's index was built, and what it costs."""

    engine: Engine
    storage: str
    opclass: str | None = None
    distance: str
    m: int | None = None
    ef_construction: int | None = None
    load_seconds: float = 0.0
    build_seconds: float = 0.0
    index_bytes: int = 0
    table_bytes: int = 0
    server: str = Field(description="Which server: the stack's tuned one or a stock instance.")
    server_settings: dict[str, str] = Field(default_factory=dict)
    explain: str | None = Field(default=None, description="EXPLAIN (ANALYZE, BUFFERS), one query.")


class BenchReport(BaseModel):
    """Everything one run measured. ``build_seconds``/``index_bytes`` are ``pgvector-hnsw``'s."""

    n: int
    dim: int
    k: int
    build_seconds: float
    index_bytes: int
    results: list[BenchResult]
    metric: Metric
    quantization: Quantization
    rerank: int | None
    m: int
    ef_construction: int
    queries: int = Field(description="Queries measured per point (exact engine: fewer).")
    exact_queries: int
    ground_truth_seconds: float
    recall_definition: str = (
        "ann-benchmarks: a returned id counts when its true distance is within 1e-3 of the "
        "k-th true distance"
    )
    builds: list[EngineBuild]
    best_at_target: dict[str, float | None] = Field(
        default_factory=dict,
        description="'engine/clients' -> highest QPS among points with recall >= 0.99.",
    )
    machine: dict[str, str]
    started_at: str
    finished_at: str
    base_file: str | None = None
    queries_file: str | None = None
