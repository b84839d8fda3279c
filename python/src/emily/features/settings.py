"""Settings of the feature store (Feast: Redis online store, PostgreSQL offline store).

Every value the Feast configuration, the feature server and the agent's feature client use is
named here, so a deployment (the NixOS module) sets them explicitly instead of relying on Feast's
defaults. Unset connection settings mean "the local stack's" (``emily up``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

_IDENT = r"^[a-z][a-z0-9_]{0,62}$"


class FeaturesSettings(BaseModel):
    """The Feast feature repository, its online/offline stores and the feature server."""

    # -- where the server is -----------------------------------------------------------------
    server_url: str | None = Field(
        default=None,
        description="External feature server (http://host:port). Unset: the local stack's.",
    )
    port: int = Field(default=0, ge=0, le=65535, description="Local feature server port.")
    # -- the repository ------------------------------------------------------------------------
    project: str = Field(
        default="emily",
        pattern=_IDENT,
        description="Feast project. Redis keys end in it: never a suffix of another project "
        "sharing the Redis database.",
    )
    db_schema: str = Field(
        default="emily_features",
        pattern=_IDENT,
        description="PostgreSQL schema of the feature sources (views over the episodes), the "
        "SQL registry's tables, baselines and Feast's temporary entity tables.",
    )
    db_role: str = Field(
        default="emily_features",
        pattern=_IDENT,
        description="PostgreSQL role of Feast (owns the schema, reads the episodes).",
    )
    offline_dsn: SecretStr | None = Field(
        default=None,
        description="DSN of the feature role (offline store and SQL registry). Unset: the local "
        "stack's PostgreSQL with a generated password.",
    )
    registry_path: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the SQL registry. Unset: the offline DSN, in db_schema.",
    )
    registry_cache_ttl_s: int = Field(
        default=60,
        ge=1,
        description="Registry cache TTL; refreshed in a background thread (cache_mode thread), "
        "so a refresh never adds latency to a request.",
    )
    # -- online store (Redis) -----------------------------------------------------------------
    redis_db: int = Field(
        default=1,
        ge=0,
        le=15,
        description="Redis database index of the online store (working memory uses 0).",
    )
    redis_type: Literal["redis", "redis_sentinel", "redis_cluster"] = Field(
        default="redis", description="Plain Redis, Sentinel (nodes are sentinels) or Cluster."
    )
    redis_connection: SecretStr | None = Field(
        default=None,
        description="Feast connection string (host:port[,host:port],password=...,ssl=true). "
        "Unset: built from redis.url / the local stack. No ',' in passwords.",
    )
    sentinel_master: str = Field(default="mymaster", description="Sentinel master name.")
    key_ttl_s: int = Field(
        default=172_800,
        ge=0,
        description="Redis EXPIRE on every entity hash (0: none). Covers the longest view TTL "
        "with margin; per-view staleness is checked by the client.",
    )
    # -- feature server (feast serve) --------------------------------------------------------
    workers: int = Field(default=1, ge=1, description="gunicorn workers (size to real cores).")
    max_requests: int = Field(
        default=0,
        ge=0,
        description="Worker recycling after N requests (0: never; recycling stalls requests "
        "for seconds while the new worker loads the registry).",
    )
    keep_alive_s: int = Field(default=30, ge=1, description="HTTP keep-alive timeout.")
    cached_permissions: bool = Field(
        default=True,
        description="The server checks permissions against its cached registry (Feast 0.67 "
        "queries the SQL registry for every check otherwise); revocations apply within "
        "registry_cache_ttl_s.",
    )
    start_timeout_s: float = Field(
        default=240.0, gt=0, description="How long `emily up` waits for the server to answer."
    )
    # -- auth ----------------------------------------------------------------------------------
    auth: Literal["local", "oidc", "none"] = Field(
        default="local",
        description="local: OIDC against the stack's own token issuer (keys in the state "
        "dir); oidc: an external IdP (oidc_*); none: Feast's no_auth (no enforcement).",
    )
    oidc_discovery_url: str | None = Field(default=None, description="IdP discovery document.")
    oidc_client_id: str = Field(
        default="emily-features", description="Roles are read from resource_access.<id>.roles."
    )
    oidc_audience: str | None = Field(default=None, description="Required token audience.")
    oidc_issuer: str | None = Field(default=None, description="Required token issuer.")
    oidc_verify_ssl: bool = Field(default=True, description="Verify the IdP's certificate.")
    oidc_ca_cert: Path | None = Field(default=None, description="CA bundle of the IdP.")
    token: SecretStr | None = Field(
        default=None,
        description="Bearer token clients send to an external server (EMILY_FEATURES__TOKEN_FILE "
        "to read it from a credential file).",
    )
    local_token_ttl_s: int = Field(
        default=3600, ge=60, description="Lifetime of tokens minted for the local issuer."
    )
    # -- the agent's client ------------------------------------------------------------------
    in_loop: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Agent turns read and push features: on, off, or auto (when a server is "
        "configured or the local stack started one).",
    )
    read_deadline_s: float = Field(
        default=0.25, gt=0, description="perceive gives up on online features after this."
    )
    push_deadline_s: float = Field(
        default=0.5, gt=0, description="consolidate gives up on pushing features after this."
    )
    push_max_rows: int = Field(default=1000, ge=1, description="Largest push batch accepted.")
    push_max_future_s: float = Field(
        default=300.0, ge=0, description="Clock skew tolerated for an event timestamp."
    )
    cooldown_s: float = Field(
        default=30.0, ge=0, description="After a failure the client waits this before retrying."
    )
    # -- materialization and monitoring ------------------------------------------------------
    materialize_overlap_s: int = Field(
        default=3600,
        ge=0,
        description="materialize --incremental re-reads this much before the last end, so "
        "episodes stored late are not missed (writes keep the newest event, so it is safe).",
    )
    monitor_window_s: int = Field(
        default=86_400, ge=60, description="Recent rows the monitor compares to the baseline."
    )
    monitor_max_rows: int = Field(
        default=20_000, ge=10, description="Rows per view the monitor reads at most."
    )
    drift_alpha: float = Field(
        default=0.05, gt=0, lt=1, description="Family-wise level of the drift tests per view."
    )
    max_missing_rate: float = Field(
        default=0.2, ge=0, le=1, description="A feature missing more often than this is flagged."
    )
    metrics_refresh_s: float = Field(
        default=60.0,
        gt=0,
        description="/metrics recomputes the feature monitor at most this often.",
    )
    ui_port: int = Field(default=8888, ge=1, le=65535, description="`emily features ui` port.")

    @model_validator(mode="after")
    def _consistent(self) -> FeaturesSettings:
        if self.auth == "oidc" and not self.oidc_discovery_url:
            raise ValueError("auth = oidc needs oidc_discovery_url")
        if self.redis_type == "redis_cluster" and self.redis_db != 0:
            raise ValueError("Redis Cluster has only database 0: set redis_db = 0")
        return self
