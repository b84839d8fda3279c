"""What callers send and get back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Generic, TypedDict, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T", bound=BaseModel)


class ChatMessage(TypedDict):
    role: str
    content: str


Messages = Sequence[ChatMessage] | Sequence[Mapping[str, str]]


class TokenUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatResult(BaseModel):
    text: str
    backend: str
    model: str
    usage: TokenUsage
    latency_ms: float = Field(description="Client-measured, request sent to last byte.")
    ttft_ms: float | None = Field(default=None, description="Time to first token (streaming).")
    inter_token_ms: list[float] = Field(default_factory=list, description="Gaps between chunks.")
    server_ms: float | None = Field(
        default=None, description="Server-reported prompt + generation time, when reported."
    )
    finish_reason: str | None = None


class StructuredResult(BaseModel, Generic[T]):
    value: T
    backend: str
    model: str
    usage: TokenUsage
    latency_ms: float
    attempts: int
    server_ms: float | None = None
