"""Settings of the episodic memory: its PostgreSQL database and the text embedder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class DatabaseSettings(BaseModel):
    """PostgreSQL + pgvector. Without ``dsn`` the local stack's server is used."""

    dsn: SecretStr | None = Field(
        default=None, description="Application DSN (least-privilege role). Unset: local stack."
    )
    admin_dsn: SecretStr | None = Field(
        default=None, description="Owner DSN for migrations and maintenance. Unset: same as dsn."
    )
    pool_min_size: int = Field(default=1, ge=0, description="Connections kept open.")
    pool_max_size: int = Field(default=8, ge=1, description="Upper bound of the pool.")
    app_role: str = Field(
        default="emily_app",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="Least-privilege role the application connects as.",
    )
    embedding_dim: int = Field(
        default=384, ge=1, le=16000, description="Dimension of semantic embeddings."
    )
    embedding_storage: Literal["halfvec", "vector"] = Field(
        default="halfvec", description="halfvec halves index size at no measurable recall cost."
    )
    hnsw_m: int = Field(default=16, ge=2, le=100, description="HNSW graph degree (semantic).")
    hnsw_ef_construction: int = Field(
        default=64, ge=4, le=1000, description="HNSW build-time candidate list (semantic)."
    )
    ef_search: int = Field(
        default=80, ge=1, le=1000, description="hnsw.ef_search set per query (recall/speed)."
    )
    partitions_ahead: int = Field(
        default=3,
        ge=0,
        le=120,
        description=(
            "Monthly partitions created ahead of now (never beyond the accepted"
            " occurred_at window)."
        ),
    )
    retention_months: int | None = Field(
        default=None, ge=1, description="Drop partitions older than this (unset: keep all)."
    )
    slow_query_ms: float = Field(
        default=200.0, ge=0, description="Queries slower than this are logged (slow_query)."
    )
    statement_timeout_ms: int = Field(
        default=30_000, ge=0, description="Server-side statement timeout for app sessions."
    )
    max_content_chars: int = Field(
        default=16_384, ge=1, description="Longest episode text accepted."
    )
    max_context_bytes: int = Field(
        default=65_536, ge=2, description="Largest episode context accepted (JSON bytes)."
    )
    max_context_depth: int = Field(
        default=16, ge=1, le=64, description="Deepest nesting of an episode context accepted."
    )
    occurred_at_past_days: int = Field(
        default=3_660,
        ge=1,
        description="Oldest accepted occurred_at, in days before now (partitions only inside).",
    )
    occurred_at_future_days: int = Field(
        default=31,
        ge=0,
        description="Latest accepted occurred_at, in days after now (partitions only inside).",
    )


class EmbedderSettings(BaseModel):
    """Text embedder: ``local`` runs all-MiniLM-L6-v2 on ONNX Runtime; ``openai`` calls
    an OpenAI-compatible ``/v1/embeddings`` endpoint."""

    kind: Literal["local", "openai"] = Field(
        default="local", description="local: ONNX Runtime; openai: /v1/embeddings endpoint."
    )
    model_dir: Path | None = Field(
        default=None, description="Sentence-transformers model dir. Unset: the shipped wheel."
    )
    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL.")
    api_key: SecretStr | None = Field(default=None, description="API key for base_url.")
    model: str = Field(default="all-MiniLM-L6-v2", description="Model name sent to the API.")
    batch_size: int = Field(default=64, ge=1, description="Texts per embedding batch.")
    threads: int = Field(default=0, ge=0, description="ONNX Runtime intra-op threads; 0 = auto.")
