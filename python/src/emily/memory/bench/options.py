"""Validation of a run's options, before anything is loaded or started."""

from __future__ import annotations

from collections.abc import Sequence

from emily.memory.bench.defaults import ENGINES, Engine, Quantization
from emily.memory.bench.errors import BenchConfigError


def check_options(
    k: int,
    efs: Sequence[int],
    clients: Sequence[int],
    quantization: Quantization,
    rerank: int | None,
    m: int,
    ef_construction: int,
    engines: Sequence[str],
    exact_queries: int,
) -> tuple[Engine, ...]:
    """The chosen engines in canonical order; a ``BenchConfigError`` naming the option else."""
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
    if exact_queries < 1:
        raise BenchConfigError("exact_queries must be at least 1", field="exact_queries")
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        raise BenchConfigError(
            f"unknown engine(s) {', '.join(unknown) or '(none given)'}; "
            f"known: {', '.join(ENGINES)}",
            field="engines",
        )
    return tuple(e for e in ENGINES if e in engines)
