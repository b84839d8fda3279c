"""The benchmark's defaults and vocabulary (no heavy imports: the CLI reads them at start)."""

from __future__ import annotations

from typing import Literal

DEFAULT_EFS = (10, 20, 40, 80, 160, 320)
# Tuned on GloVe-400k (hardest of our datasets): m=24 reaches recall 0.99 at about half the
# ef_search m=16 needs, i.e. ~40% fewer distance computations per query, and builds within
# the 5-minute budget on 2 cores with ef_construction=100. See docs/benchmarks.md.
DEFAULT_M = 24
DEFAULT_EF_CONSTRUCTION = 100
# pgvector-default is the design's starting point: pgvector's documented defaults.
STOCK_M = 16
STOCK_EF_CONSTRUCTION = 64
DEFAULT_EXACT_QUERIES = 100

Engine = Literal["pgvector-hnsw", "pgvector-default", "pgvector-exact", "faiss"]
Metric = Literal["cosine", "l2"]
Quantization = Literal["halfvec", "vector", "binary"]
ENGINES: tuple[Engine, ...] = ("pgvector-hnsw", "pgvector-default", "pgvector-exact", "faiss")
