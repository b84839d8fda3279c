"""Vector-search benchmark: pgvector HNSW (tuned and stock), exact scan and faiss."""
