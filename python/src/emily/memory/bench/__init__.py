"""``emily memory bench``: recall/QPS of pgvector HNSW (tuned and stock), exact scan and faiss
on any float matrix."""

from emily.memory.bench.data import load_matrix
from emily.memory.bench.errors import BenchConfigError, BenchInputError
from emily.memory.bench.models import BenchReport, BenchResult, EngineBuild
from emily.memory.bench.plot import plot
from emily.memory.bench.runner import run_benchmark

__all__ = [
    "BenchConfigError",
    "BenchInputError",
    "BenchReport",
    "BenchResult",
    "EngineBuild",
    "load_matrix",
    "plot",
    "run_benchmark",
]
