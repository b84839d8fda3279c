"""Settings of the local stack (``emily up``) and of Redis, which it runs."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr


class RedisSettings(BaseModel):
    """Redis (working memory, online features). Without ``url`` the local stack's server is used."""

    url: SecretStr | None = Field(default=None, description="redis:// URL. Unset: local stack.")


class StackSettings(BaseModel):
    """Local stack (``emily up``): which servers to start and where."""

    postgres_bin_dir: Path | None = Field(
        default=None, description="Directory with initdb/pg_ctl/postgres. Unset: the wheel's."
    )
    postgres_port: int = Field(default=0, ge=0, le=65535, description="0 = pick a free port.")
    postgres_shared_buffers: str = Field(
        default="1GB", description="Sized to hold the HNSW indexes in memory."
    )
    postgres_maintenance_work_mem: str = Field(
        default="1GB", description="HNSW builds are fast only when the graph fits here."
    )
    postgres_max_parallel_maintenance_workers: int = Field(
        default=2, ge=0, description="Parallel workers for index builds."
    )
    redis_bin: Path | None = Field(default=None, description="redis-server. Unset: from PATH.")
    redis_port: int = Field(default=0, ge=0, le=65535, description="0 = pick a free port.")
    start_timeout_s: float = Field(default=60.0, gt=0)
