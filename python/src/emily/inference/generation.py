"""One generation request, whichever endpoint serves it: what is sent (``GenerationRequest``)
and how an answer is read back (``read_answer``, ``read_stream``, ``stream_pieces``).

Chat, streamed chat, text streaming and plain completions differ only in a few fields of the
body and in where the text sits in the answer, so both sides are written once here and the
client only decides which request to make."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from emily.errors import ConfigError
from emily.inference.types import ChatResult, Messages, TokenUsage


def chat_messages(messages: Messages) -> list[dict[str, str]]:
    """The messages as plain dicts; each needs a string role and content (row named)."""
    out = []
    for index, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            raise ConfigError("each message needs string 'role' and 'content'", row=index)
        out.append({"role": role, "content": content})
    if not out:
        raise ConfigError("at least one message is needed", field="messages")
    return out


@dataclass(frozen=True)
class GenerationRequest:
    """A chat request (``messages``) or a plain completion (``prompt``), never both."""

    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    max_tokens: int = 256
    temperature: float = 0.0
    stream: bool = False
    extra_body: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ConfigError("a request needs either messages or a prompt", field="messages")

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def body(self, model: str) -> dict[str, Any]:
        """Keyword arguments for the SDK's ``create`` of the matching endpoint."""
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if self.messages is not None:
            body["messages"] = self.messages
        else:
            body["prompt"] = self.prompt
        if self.stream:
            # Usage arrives in a last chunk only when asked for; the bench counts tokens with it.
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if self.extra_body:
            body["extra_body"] = self.extra_body
        return body


@dataclass(frozen=True)
class Opened:
    """A request that went out: the SDK's answer (or open stream) and when it was sent."""

    response: Any
    backend: str
    model: str
    started: float


def server_ms(extra: dict[str, Any] | None) -> float | None:
    """llama-server adds ``timings`` (prompt_ms + predicted_ms) to each answer."""
    timings = (extra or {}).get("timings")
    if not isinstance(timings, dict):
        return None
    try:
        return float(timings.get("prompt_ms", 0.0)) + float(timings.get("predicted_ms", 0.0))
    except (TypeError, ValueError):
        return None


def usage_of(usage: Any) -> TokenUsage:
    if usage is None:
        return TokenUsage()
    return TokenUsage(
        prompt_tokens=usage.prompt_tokens or 0, completion_tokens=usage.completion_tokens or 0
    )


def _text_of(choice: Any) -> str:
    # The SDK's types differ only here: a chat answer has `message`, a chat chunk `delta`, a
    # completion (answer or chunk) `text`.
    for part in ("message", "delta"):
        holder = getattr(choice, part, None)
        if holder is not None:
            return str(holder.content or "")
    return str(getattr(choice, "text", "") or "")


def read_answer(opened: Opened) -> ChatResult:
    """A complete (non-streamed) chat or completion answer."""
    answer = opened.response
    latency = (time.perf_counter() - opened.started) * 1000
    choice = answer.choices[0] if answer.choices else None
    return ChatResult(
        text=_text_of(choice) if choice is not None else "",
        backend=opened.backend,
        model=answer.model or opened.model,
        usage=usage_of(answer.usage),
        latency_ms=latency,
        server_ms=server_ms(answer.model_extra),
        finish_reason=choice.finish_reason if choice is not None else None,
    )


async def _chunks(opened: Opened) -> AsyncIterator[tuple[float, Any]]:
    """Each chunk with its arrival time; the stream is closed however iteration ends."""
    async with opened.response as stream:
        async for chunk in stream:
            yield time.perf_counter(), chunk


async def stream_pieces(opened: Opened) -> AsyncIterator[str]:
    """The non-empty text pieces of an open stream, as they arrive."""
    async for _, chunk in _chunks(opened):
        text = _text_of(chunk.choices[0]) if chunk.choices else ""
        if text:
            yield text


async def read_stream(opened: Opened) -> ChatResult:
    """A streamed answer read to its end: the text, TTFT and the gaps between text chunks."""
    parts: list[str] = []
    gaps: list[float] = []
    first: float | None = None
    last = opened.started
    usage = TokenUsage()
    server: float | None = None
    finish: str | None = None
    model = opened.model
    async for now, chunk in _chunks(opened):
        model = chunk.model or model
        if chunk.choices:
            choice = chunk.choices[0]
            finish = choice.finish_reason or finish
            text = _text_of(choice)
            if text:
                if first is None:
                    first = now
                else:
                    gaps.append((now - last) * 1000)
                last = now
                parts.append(text)
        if chunk.usage is not None:
            usage = usage_of(chunk.usage)
        server = server_ms(chunk.model_extra) or server
    return ChatResult(
        text="".join(parts),
        backend=opened.backend,
        model=model,
        usage=usage,
        latency_ms=(time.perf_counter() - opened.started) * 1000,
        ttft_ms=(first - opened.started) * 1000 if first is not None else None,
        inter_token_ms=gaps,
        server_ms=server,
        finish_reason=finish,
    )
