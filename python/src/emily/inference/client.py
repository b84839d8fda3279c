"""``InferenceClient``: chat, streaming, completions and structured generation over an ordered
chain of OpenAI-compatible backends (llama.cpp's llama-server, SGLang), on the official
``openai`` SDK.

Per request: one deadline over everything (retries and fallbacks included); per backend: retries
with jittered exponential backoff for retryable failures only, and a circuit breaker that makes
a dead backend fail fast so the chain moves on at once."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx2
import openai
from pydantic import ValidationError

from emily.config import Settings
from emily.errors import ConfigError
from emily.inference.backends import Backend
from emily.inference.errors import (
    BackendUnavailable,
    CircuitOpen,
    DeadlineExceeded,
    InferenceError,
    InvalidStructuredOutput,
)
from emily.inference.retry import backoff_s, is_retryable
from emily.inference.schema import json_schema_of, response_format
from emily.inference.types import ChatResult, Messages, StructuredResult, T, TokenUsage
from emily.telemetry.logs import get_logger

log = get_logger("inference")
R = TypeVar("R")


def _server_ms(extra: dict[str, Any] | None) -> float | None:
    """llama-server adds ``timings`` (prompt_ms + predicted_ms) to each answer."""
    timings = (extra or {}).get("timings")
    if not isinstance(timings, dict):
        return None
    try:
        return float(timings.get("prompt_ms", 0.0)) + float(timings.get("predicted_ms", 0.0))
    except (TypeError, ValueError):
        return None


def _usage(usage: Any) -> TokenUsage:
    if usage is None:
        return TokenUsage()
    return TokenUsage(
        prompt_tokens=usage.prompt_tokens or 0, completion_tokens=usage.completion_tokens or 0
    )


def _messages(messages: Messages) -> list[Any]:
    out = []
    for index, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            raise ConfigError("each message needs string 'role' and 'content'", row=index)
        out.append({"role": role, "content": content})
    if not out:
        raise ConfigError("at least one message is needed", field="messages")
    return out


class InferenceClient:
    def __init__(self, settings: Settings, http_client: httpx2.AsyncClient | None = None) -> None:
        self.settings = settings
        self._own_http = http_client is None
        # One pooled HTTP client for every backend; generous limits for concurrent benches.
        self._http = http_client or httpx2.AsyncClient(
            limits=httpx2.Limits(max_connections=64, max_keepalive_connections=32),
            timeout=httpx2.Timeout(60.0, connect=5.0),
        )
        self.backends = [Backend(b, settings, self._http) for b in settings.inference.backends]

    @classmethod
    def from_settings(
        cls, settings: Settings, *, http_client: httpx2.AsyncClient | None = None
    ) -> InferenceClient:
        return cls(settings, http_client)

    async def __aenter__(self) -> InferenceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    def backend(self, name: str) -> Backend:
        for backend in self.backends:
            if backend.name == name:
                return backend
        known = ", ".join(b.name for b in self.backends)
        raise ConfigError(f"unknown backend '{name}' (configured: {known})", field="backend")

    # -- the chain -------------------------------------------------------------------------
    def _chain(self, name: str | None) -> Sequence[Backend]:
        return [self.backend(name)] if name is not None else self.backends

    async def _attempts(self, backend: Backend, op: Callable[[Backend], Awaitable[R]]) -> R:
        retry = self.settings.inference.retry
        for attempt in range(1, retry.attempts + 1):
            if not backend.breaker.allow():
                raise CircuitOpen(
                    f"circuit open after {backend.breaker.failures} failures; next trial in "
                    f"{backend.breaker.retry_in_s():.1f}s",
                    field=backend.name,
                )
            try:
                result = await op(backend)
            except asyncio.CancelledError:
                backend.breaker.release()
                raise
            except openai.APIError as exc:
                if not is_retryable(exc):
                    backend.breaker.record_success()  # it answered: alive, the request is wrong
                    raise InferenceError(
                        f"request rejected: {exc.message}", field=backend.name
                    ) from exc
                backend.breaker.record_failure()
                log.warning(
                    "backend_failure",
                    backend=backend.name,
                    attempt=attempt,
                    error=type(exc).__name__,
                    breaker=backend.breaker.state.value,
                )
                if attempt == retry.attempts:
                    raise BackendUnavailable(
                        f"failed after {attempt} attempts: {type(exc).__name__}: {exc.message}",
                        field=backend.name,
                    ) from exc
                await asyncio.sleep(backoff_s(attempt, retry))
            except BaseException:
                backend.breaker.release()
                raise
            else:
                backend.breaker.record_success()
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run(self, op: Callable[[Backend], Awaitable[R]], backend: str | None) -> R:
        failures: list[BackendUnavailable] = []
        for candidate in self._chain(backend):
            try:
                return await self._attempts(candidate, op)
            except BackendUnavailable as exc:
                failures.append(exc)
                log.warning("backend_skipped", backend=candidate.name, reason=str(exc))
        summary = "; ".join(str(f) for f in failures)
        if all(isinstance(f, CircuitOpen) for f in failures):
            raise CircuitOpen(f"every backend's circuit is open: {summary}")
        raise BackendUnavailable(f"no backend answered: {summary}")

    async def _deadline(self, work: Awaitable[R], deadline_s: float | None) -> R:
        limit = deadline_s if deadline_s is not None else self.settings.inference.deadline_s
        try:
            async with asyncio.timeout(limit):
                return await work
        except TimeoutError as exc:
            raise DeadlineExceeded(f"no answer within the {limit:g}s deadline") from exc

    # -- chat ------------------------------------------------------------------------------
    async def chat(
        self,
        messages: Messages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        deadline_s: float | None = None,
        stream: bool = False,
        backend: str | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> ChatResult:
        """One answer. ``stream=True`` measures time to first token and inter-token gaps.
        ``extra_body`` passes server-specific fields through (``top_k``, ``grammar``, ...)."""
        body = _messages(messages)
        extra = dict(extra_body or {})

        async def once(target: Backend) -> ChatResult:
            if stream:
                return await self._stream_once(target, body, max_tokens, temperature, extra)
            return await self._complete_once(target, body, max_tokens, temperature, extra)

        return await self._deadline(self._run(once, backend), deadline_s)

    async def _complete_once(
        self,
        target: Backend,
        body: list[Any],
        max_tokens: int,
        temperature: float,
        extra_body: dict[str, Any],
    ) -> ChatResult:
        client, model = target.client(), await target.model()
        started = time.perf_counter()
        completion = await client.chat.completions.create(
            model=model,
            messages=body,
            max_tokens=max_tokens,
            temperature=temperature,
            extra_body=extra_body or None,
        )
        latency = (time.perf_counter() - started) * 1000
        choice = completion.choices[0] if completion.choices else None
        return ChatResult(
            text=(choice.message.content or "") if choice else "",
            backend=target.name,
            model=completion.model or model,
            usage=_usage(completion.usage),
            latency_ms=latency,
            server_ms=_server_ms(completion.model_extra),
            finish_reason=choice.finish_reason if choice else None,
        )

    async def _stream_once(
        self,
        target: Backend,
        body: list[Any],
        max_tokens: int,
        temperature: float,
        extra_body: dict[str, Any],
    ) -> ChatResult:
        client, model = target.client(), await target.model()
        started = time.perf_counter()
        stream = await client.chat.completions.create(
            model=model,
            messages=body,
            max_tokens=max_tokens,
            temperature=temperature,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=extra_body or None,
        )
        parts: list[str] = []
        gaps: list[float] = []
        first: float | None = None
        last = started
        usage = TokenUsage()
        server_ms: float | None = None
        finish: str | None = None
        served_model = model
        async with stream:
            async for chunk in stream:
                now = time.perf_counter()
                served_model = chunk.model or served_model
                if chunk.choices:
                    choice = chunk.choices[0]
                    finish = choice.finish_reason or finish
                    if choice.delta.content:
                        if first is None:
                            first = now
                        else:
                            gaps.append((now - last) * 1000)
                        last = now
                        parts.append(choice.delta.content)
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                server_ms = _server_ms(chunk.model_extra) or server_ms
        return ChatResult(
            text="".join(parts),
            backend=target.name,
            model=served_model,
            usage=usage,
            latency_ms=(time.perf_counter() - started) * 1000,
            ttft_ms=(first - started) * 1000 if first is not None else None,
            inter_token_ms=gaps,
            server_ms=server_ms,
            finish_reason=finish,
        )

    async def stream_chat(
        self,
        messages: Messages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        backend: str | None = None,
    ) -> AsyncIterator[str]:
        """Text pieces as they arrive. Retries and fallback apply until the stream is open;
        a failure mid-stream raises ``BackendUnavailable`` (part of the answer was delivered)."""
        body = _messages(messages)

        async def open_stream(target: Backend) -> Any:
            return await target.client().chat.completions.create(
                model=await target.model(),
                messages=body,
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
            )

        stream = await self._run(open_stream, backend)
        try:
            async with stream:
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content
        except openai.APIError as exc:
            raise BackendUnavailable(f"stream broke off: {exc.message}") from exc

    async def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        deadline_s: float | None = None,
        backend: str | None = None,
    ) -> ChatResult:
        """Plain text completion (``/v1/completions``), no chat template."""

        async def once(target: Backend) -> ChatResult:
            model = await target.model()
            started = time.perf_counter()
            completion = await target.client().completions.create(
                model=model, prompt=prompt, max_tokens=max_tokens, temperature=temperature
            )
            choice = completion.choices[0] if completion.choices else None
            return ChatResult(
                text=choice.text if choice else "",
                backend=target.name,
                model=completion.model or model,
                usage=_usage(completion.usage),
                latency_ms=(time.perf_counter() - started) * 1000,
                server_ms=_server_ms(completion.model_extra),
                finish_reason=choice.finish_reason if choice else None,
            )

        return await self._deadline(self._run(once, backend), deadline_s)

    # -- structured ------------------------------------------------------------------------
    async def generate_structured(
        self,
        messages: Messages,
        schema: type[T],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        deadline_s: float | None = None,
        backend: str | None = None,
    ) -> StructuredResult[T]:
        """An instance of ``schema`` generated under the schema's grammar. Invalid output is
        retried once (with the validation error fed back), then ``InvalidStructuredOutput``."""
        document = json_schema_of(schema)  # InvalidSchemaError before any request
        body = _messages(messages)
        started = time.perf_counter()

        async def once(conversation: list[Any], target: Backend) -> ChatResult:
            kind = await target.kind()
            fmt = response_format(document, kind, schema.__name__)
            return await self._complete_once(
                target, conversation, max_tokens, temperature, {"response_format": fmt}
            )

        async def run() -> StructuredResult[T]:
            conversation = list(body)
            problem = ""
            for attempt in (1, 2):
                answer = await self._run(functools.partial(once, conversation), backend)
                try:
                    value = schema.model_validate_json(answer.text)
                except ValidationError as exc:
                    truncated = answer.finish_reason == "length"
                    problem = f"output cut at max_tokens={max_tokens}" if truncated else str(exc)
                    log.warning("invalid_structured_output", attempt=attempt, problem=problem)
                    conversation = [
                        *body,
                        {"role": "assistant", "content": answer.text},
                        {
                            "role": "user",
                            "content": "That JSON was invalid "
                            f"({problem.splitlines()[0]}). Answer again, shorter.",
                        },
                    ]
                    continue
                return StructuredResult[T](
                    value=value,
                    backend=answer.backend,
                    model=answer.model,
                    usage=answer.usage,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    attempts=attempt,
                    server_ms=answer.server_ms,
                )
            raise InvalidStructuredOutput(
                f"no valid {schema.__name__} after 2 attempts: {problem.splitlines()[0]}",
                field="schema",
            )

        return await self._deadline(run(), deadline_s)

    # -- health ----------------------------------------------------------------------------
    async def health(self) -> dict[str, bool]:
        """Backend name → does its ``/health`` answer 200 now."""
        results = await asyncio.gather(*(b.healthy() for b in self.backends))
        return {b.name: ok for b, ok in zip(self.backends, results, strict=True)}

    def breaker_states(self) -> dict[str, str]:
        return {b.name: b.breaker.state.value for b in self.backends}
