"""``emily infer bench``: latency and structured-output validity of any OpenAI-compatible server.

Per concurrency level: ``requests`` streamed chats with a prompt of about ``prompt_tokens``
tokens (TTFT, inter-token gaps, output tokens/s, client overhead = client-measured latency minus
the server-reported prompt + generation time) and ``structured`` requests of the cognition schema
(validity rate). Prompts differ from their first word on, so no server prompt cache flatters
TTFT."""

from __future__ import annotations

import asyncio
import os
import platform
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, SecretStr

from emily import locator
from emily.config import Settings
from emily.errors import ConfigError, StackNotRunningError
from emily.inference.client import InferenceClient
from emily.inference.errors import InferenceError
from emily.inference.hardware import cpu_flags
from emily.inference.schemas import COGNITION_SYSTEM_PROMPT, CognitionProposal
from emily.inference.types import ChatResult

WORDS = [
    "river",
    "stone",
    "garden",
    "window",
    "morning",
    "letter",
    "bridge",
    "candle",
    "forest",
    "winter",
    "music",
    "harbor",
    "lantern",
    "meadow",
    "thunder",
    "pocket",
    "silver",
    "market",
    "ladder",
    "orchard",
    "feather",
    "island",
    "compass",
    "velvet",
    "canyon",
    "whisper",
    "planet",
    "marble",
    "shadow",
    "copper",
    "valley",
    "ribbon",
    "glacier",
    "meadow",
    "saddle",
    "cedar",
    "falcon",
]
SITUATIONS = [
    "The user says they feel lonely tonight.",
    "The user asks for help planning a birthday party.",
    "The user is frustrated because their code does not compile.",
    "The user just got good news about a job offer.",
    "The user wants to learn a new language but has little time.",
    "The user forgot an important meeting this morning.",
]

Progress = Callable[[int], None]


class BenchConfig(BaseModel):
    urls: list[str] = Field(default_factory=list, description="Empty: the configured backends.")
    api_key_file: Path | None = Field(
        default=None,
        description="Bearer key for `urls`, read from this file (never from the command line). "
        "Unset: the local stack's key for its own URL, none for others.",
    )
    concurrency: list[int] = Field(default_factory=lambda: [1, 4, 8])
    requests: int = Field(default=16, ge=0)
    prompt_tokens: int = Field(default=100, ge=8)
    max_tokens: int = Field(default=32, ge=1)
    structured: int = Field(default=0, ge=0)
    structured_max_tokens: int = Field(default=320, ge=16)
    deadline_s: float = Field(default=300.0, gt=0)


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "mean": None}
    array = np.asarray(values, dtype=float)
    return {
        "p50": round(float(np.percentile(array, 50)), 3),
        "p95": round(float(np.percentile(array, 95)), 3),
        "mean": round(float(array.mean()), 3),
    }


def filler(words: int, rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def bench_prompt(index: int, words: int, rng: random.Random) -> str:
    return f"Request {index}. Summarise these notes in one sentence: {filler(words, rng)}"


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        with Path("/proc/cpuinfo").open(encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


async def _gather_limited(jobs: list[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            try:
                return await job()
            except InferenceError as exc:
                return exc

    return await asyncio.gather(*(run(job) for job in jobs))


async def _words_for(client: InferenceClient, backend: str, target_tokens: int) -> int:
    """Words of filler giving ~target prompt tokens, from two calibration requests."""
    rng = random.Random(0)
    counts = []
    for words in (10, 60):
        result = await client.chat(
            [{"role": "user", "content": bench_prompt(0, words, rng)}],
            max_tokens=1,
            backend=backend,
        )
        counts.append(result.usage.prompt_tokens)
    per_word = max((counts[1] - counts[0]) / 50, 0.1)
    base = counts[0] - 10 * per_word
    return max(1, round((target_tokens - base) / per_word))


async def bench_backend(
    client: InferenceClient, backend: str, config: BenchConfig, progress: Progress
) -> list[dict[str, Any]]:
    words = await _words_for(client, backend, config.prompt_tokens)
    kind = await client.backend(backend).kind()
    model = await client.backend(backend).model()
    rows = []
    for level in config.concurrency:
        rng = random.Random(level)
        prompts = [bench_prompt(i, words, rng) for i in range(config.requests)]

        def chat_job(prompt: str) -> Callable[[], Awaitable[ChatResult]]:
            async def job() -> ChatResult:
                result = await client.chat(
                    [{"role": "user", "content": prompt}],
                    max_tokens=config.max_tokens,
                    stream=True,
                    deadline_s=config.deadline_s,
                    backend=backend,
                )
                progress(1)
                return result

            return job

        started = time.perf_counter()
        chats = await _gather_limited([chat_job(p) for p in prompts], level)
        wall_s = time.perf_counter() - started
        ok = [r for r in chats if isinstance(r, ChatResult)]
        overhead = [r.latency_ms - r.server_ms for r in ok if r.server_ms is not None]
        gaps = [gap for r in ok for gap in r.inter_token_ms]

        def structured_job(index: int) -> Callable[[], Awaitable[Any]]:
            async def job() -> Any:
                try:
                    return await client.generate_structured(
                        [
                            {"role": "system", "content": COGNITION_SYSTEM_PROMPT},
                            {
                                "role": "user",
                                "content": SITUATIONS[index % len(SITUATIONS)]
                                + " One policy is enough.",
                            },
                        ],
                        CognitionProposal,
                        max_tokens=config.structured_max_tokens,
                        temperature=0.7,
                        deadline_s=config.deadline_s,
                        backend=backend,
                    )
                finally:
                    progress(1)

            return job

        structured = await _gather_limited(
            [structured_job(i) for i in range(config.structured)], level
        )
        valid = [r for r in structured if not isinstance(r, BaseException)]
        rows.append(
            {
                "backend": backend,
                "url": client.backend(backend).base_url(),
                "kind": kind,
                "model": model,
                "concurrency": level,
                "requests": len(prompts),
                "errors": len(chats) - len(ok),
                "prompt_tokens": percentiles([float(r.usage.prompt_tokens) for r in ok]),
                "output_tokens": sum(r.usage.completion_tokens for r in ok),
                "ttft_ms": percentiles([r.ttft_ms for r in ok if r.ttft_ms is not None]),
                "inter_token_ms": percentiles(gaps),
                "output_tokens_per_s": round(sum(r.usage.completion_tokens for r in ok) / wall_s, 2)
                if ok
                else None,
                "latency_ms": percentiles([r.latency_ms for r in ok]),
                "client_overhead_ms": percentiles(overhead),
                "structured": {
                    "requests": len(structured),
                    "valid": len(valid),
                    "validity": round(len(valid) / len(structured), 4) if structured else None,
                    "valid_first_attempt": sum(1 for r in valid if r.attempts == 1),
                    "failures": sorted({type(r).__name__ for r in structured if r not in valid}),
                    "latency_ms": percentiles([r.latency_ms for r in valid]),
                },
            }
        )
    return rows


def url_key(settings: Settings, url: str, key_file: Path | None) -> str | None:
    """The key to send to ``url``: from ``key_file`` if given; for the local stack's own
    llama-server (``--url`` copied from ``emily status``) the key it was started with."""
    if key_file is not None:
        try:
            key = key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the API key file {key_file}: {exc.strerror}", field="--api-key-file"
            ) from exc
        if not key:
            raise ConfigError(f"the API key file {key_file} is empty", field="--api-key-file")
        return key
    try:
        local = locator.llm_base_url(settings)
    except StackNotRunningError:
        return None
    return locator.llm_api_key(settings) if local == url.rstrip("/") else None


def bench_settings(settings: Settings, config: BenchConfig) -> Settings:
    """The chain to measure: ``urls`` if given, else the configured backends; either way one
    try per request, the bench deadline as HTTP timeout and a breaker that never opens. The
    bench measures the server, not our failover."""
    inference = settings.inference.model_dump()
    backends = inference["backends"]
    if config.urls:
        backends = [
            {
                "name": f"url{i}",
                "kind": "auto",
                "base_url": url,
                "api_key": url_key(settings, url, config.api_key_file),
            }
            for i, url in enumerate(config.urls)
        ]
    for backend in backends:
        backend["timeout_s"] = config.deadline_s
        if isinstance(backend.get("api_key"), SecretStr):
            backend["api_key"] = backend["api_key"].get_secret_value()
    inference["backends"] = backends
    inference["retry"] = {"attempts": 1, "base_backoff_s": 0.0, "max_backoff_s": 0.0}
    inference["breaker"] = {"failure_threshold": 1_000_000, "reset_timeout_s": 1.0}
    return settings.model_copy(update={"inference": settings.inference.model_validate(inference)})


def total_requests(config: BenchConfig, backends: int) -> int:
    per_level = config.requests + config.structured
    return backends * len(config.concurrency) * per_level


async def run_bench(
    settings: Settings, config: BenchConfig, progress: Progress = lambda _: None
) -> dict[str, Any]:
    settings = bench_settings(settings, config)
    started = time.time()
    results: list[dict[str, Any]] = []
    async with InferenceClient.from_settings(settings) as client:
        for backend in client.backends:
            results.extend(await bench_backend(client, backend.name, config, progress))
    return {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "config": config.model_dump(mode="json"),
        "machine": machine(),
        "results": results,
    }
