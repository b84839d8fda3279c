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
    ApiKeyRefusedError,
    BackendUnavailable,
    CircuitOpen,
    DeadlineExceeded,
    InferenceError,
    InvalidStructuredOutput,
)
from emily.inference.generation import (
    GenerationRequest,
    Opened,
    chat_messages,
    read_answer,
    read_stream,
    stream_pieces,
)
from emily.inference.retry import backoff_s, is_retryable
from emily.inference.schema import json_schema_of, response_format
from emily.inference.types import ChatResult, Messages, StructuredResult, T
from emily.telemetry.logs import get_logger

log = get_logger("inference")
R = TypeVar("R")


def rejection(exc: openai.APIError, backend: Backend) -> InferenceError:
    """The typed error for a request the server refused (not worth retrying)."""
    status = exc.status_code if isinstance(exc, openai.APIStatusError) else None
    if status in (401, 403):
        # Not a fallback case: a wrong key is a configuration error to fix, not an outage.
        return ApiKeyRefusedError(
            f"the server refused the API key (HTTP {status}): {exc.message}",
            field=backend.name,
            hint=backend.key_hint(),
        )
    return InferenceError(f"request rejected: {exc.message}", field=backend.name)


class InferenceClient:
    def __init__(
        self,
        settings: Settings,
        http_client: httpx2.AsyncClient | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` drives the circuit breakers (a test passes a manual one)."""
        self.settings = settings
        self._own_http = http_client is None
        # One pooled HTTP client for every backend; generous limits for concurrent benches.
        self._http = http_client or httpx2.AsyncClient(
            limits=httpx2.Limits(max_connections=64, max_keepalive_connections=32),
            timeout=httpx2.Timeout(60.0, connect=5.0),
        )
        self.backends = [
            Backend(b, settings, self._http, clock=clock) for b in settings.inference.backends
        ]

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        http_client: httpx2.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> InferenceClient:
        return cls(settings, http_client, clock=clock)

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
                    raise rejection(exc, backend) from exc
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

    # -- chat, streaming, completions: one request shape, one opener, one reader ----------
    async def _open(self, target: Backend, request: GenerationRequest) -> Opened:
        """Send ``request`` to ``target``: the one place a generation request is built."""
        client, model = target.client(), await target.model()
        started = time.perf_counter()
        kwargs = request.body(model)
        if request.is_chat:
            response: Any = await client.chat.completions.create(**kwargs)
        else:
            response = await client.completions.create(**kwargs)
        return Opened(response=response, backend=target.name, model=model, started=started)

    async def _answer(self, target: Backend, request: GenerationRequest) -> ChatResult:
        opened = await self._open(target, request)
        if request.stream:
            return await read_stream(opened)
        return read_answer(opened)

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
        request = GenerationRequest(
            messages=chat_messages(messages),
            max_tokens=max_tokens,
            temperature=temperature,
            stream=stream,
            extra_body=dict(extra_body or {}),
        )
        return await self._deadline(self._run_request(request, backend), deadline_s)

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
        request = GenerationRequest(
            messages=chat_messages(messages),
            max_tokens=max_tokens,
            temperature=temperature,
            stream=True,
        )
        opened = await self._run(functools.partial(self._open, request=request), backend)
        try:
            async for piece in stream_pieces(opened):
                yield piece
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
        request = GenerationRequest(prompt=prompt, max_tokens=max_tokens, temperature=temperature)
        return await self._deadline(self._run_request(request, backend), deadline_s)

    async def _run_request(self, request: GenerationRequest, backend: str | None) -> ChatResult:
        return await self._run(functools.partial(self._answer, request=request), backend)

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
        body = chat_messages(messages)
        started = time.perf_counter()

        async def once(conversation: list[dict[str, str]], target: Backend) -> ChatResult:
            fmt = response_format(document, await target.kind(), schema.__name__)
            request = GenerationRequest(
                messages=conversation,
                max_tokens=max_tokens,
                temperature=temperature,
                extra_body={"response_format": fmt},
            )
            return await self._answer(target, request)

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
        return await self._each(Backend.healthy)

    async def key_checks(self) -> dict[str, bool | None]:
        """Backend name → does it accept our API key (None: unreachable)."""
        return await self._each(Backend.key_accepted)

    async def _each(self, probe: Callable[[Backend], Awaitable[R]]) -> dict[str, R]:
        """``probe`` on every backend at once, by backend name."""
        results = await asyncio.gather(*(probe(b) for b in self.backends))
        return {b.name: result for b, result in zip(self.backends, results, strict=True)}

    def breaker_states(self) -> dict[str, str]:
        return {b.name: b.breaker.state.value for b in self.backends}
