"""Settings of the triune agent loop and its API service."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class AgentsSettings(BaseModel):
    """Loop deadlines, drives, working-memory TTLs, API service."""

    loop_deadline_s: float = Field(
        default=5.0, gt=0, description="Budget of one full perceive-to-consolidate turn."
    )
    cognition_enabled: bool = Field(
        default=True, description="Ask the LLM for candidate policies (off: instinct + affect)."
    )
    cognition_deadline_s: float = Field(
        default=3.5, gt=0, description="The LLM's share of the loop deadline; later = degraded."
    )
    cognition_max_tokens: int = Field(
        default=64, ge=16, description="Completion budget of the cognition call."
    )
    memory_enabled: bool = Field(
        default=True, description="Recall from and consolidate to episodic memory."
    )
    appraiser: Literal["champion", "words"] = Field(
        default="champion",
        description="Valence from the registered champion model (the anchor method while it is "
        "unavailable, degraded), or from the word lists only.",
    )
    ab_challenger_share: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="A/B test of the appraisal model: the share of threads (sticky, by a hash of "
        "the thread id) whose turns use the registry's challenger while there is one; 0: off.",
    )
    prompt_source: Literal["registry", "builtin"] = Field(
        default="registry",
        description="The cognition prompt from MLflow's prompt registry (by mlops.prompt_alias; "
        "the built-in text while it is unavailable), or the built-in text only.",
    )
    memory_timeout_s: float = Field(
        default=1.0, gt=0, description="Embed/recall/consolidate give up after this (degraded)."
    )
    recall_k: int = Field(default=5, ge=1, le=100, description="Episodes recalled per mode.")
    redis_timeout_s: float = Field(
        default=0.5, gt=0, description="Connect/command timeout for working memory in Redis."
    )
    working_memory_ttl_s: int = Field(
        default=3600, ge=1, description="TTL of a thread's working memory in Redis."
    )
    broadcast_maxlen: int = Field(
        default=100, ge=1, description="Approximate length cap of a thread's broadcast stream."
    )
    durability: Literal["sync", "async", "exit"] = Field(
        default="exit",
        description="Checkpoints per turn (exit) or per step: sync, or async (overlapped).",
    )
    checkpoint_schema: str = Field(
        default="emily_agents",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema of LangGraph's checkpoint tables.",
    )
    db_connect_timeout_s: int = Field(
        default=3,
        ge=1,
        description="Connect timeout to PostgreSQL for checkpoints; also how long a turn waits "
        "for a pooled checkpoint connection before it fails (503).",
    )
    db_reconnect_timeout_s: int = Field(
        default=300,
        ge=1,
        description="How long the checkpoint pool keeps trying to reconnect after PostgreSQL "
        "went away before it reports the failure (it still reconnects on demand afterwards).",
    )
    precision: float = Field(
        default=4.0, gt=0, description="Policy precision (inverse temperature) over -EFE."
    )
    weight_instinct: float = Field(default=1.0, ge=0, description="Workspace weight: instinct.")
    weight_affect: float = Field(default=0.9, ge=0, description="Workspace weight: affect.")
    weight_cognition: float = Field(default=1.1, ge=0, description="Workspace weight: cognition.")
    history_limit: int = Field(
        default=50, ge=1, description="Decisions kept in a thread's checkpointed history."
    )
    api_host: str = Field(default="127.0.0.1", description="`emily agents serve` bind address.")
    api_port: int = Field(default=8765, ge=1, le=65535, description="`emily agents serve` port.")
    api_token: SecretStr | None = Field(
        default=None,
        description="Bearer token of the API (required, non-empty, by `emily agents serve`).",
    )
    api_max_body_bytes: int = Field(
        default=65_536,
        ge=1024,
        description="Largest request body the API reads; larger ones get 413 before parsing "
        "or authentication.",
    )
    max_turns_in_flight: int | None = Field(
        default=None,
        ge=1,
        description="Turns the API runs at once (default: inference.server.parallel, the LLM "
        "server's slots); more wait, up to max_turns_waiting.",
    )
    max_turns_waiting: int | None = Field(
        default=None,
        ge=0,
        description="Requests the API holds waiting for a slot or for their thread beyond the "
        "running ones (default: max_turns_in_flight); beyond: 429 with Retry-After.",
    )
    thread_queue: int = Field(
        default=4,
        ge=0,
        description="Requests that may wait for one thread's running turn (served in arrival "
        "order); beyond: 409 with Retry-After.",
    )
