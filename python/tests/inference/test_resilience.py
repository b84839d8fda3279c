"""Circuit breaker and fallback against real servers: a second local llama-server instance
(its own state directory) is killed and restarted mid-test."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from emily.config import Settings
from emily.inference.client import InferenceClient
from emily.inference.errors import BackendUnavailable, CircuitOpen
from emily.stack.manager import Stack
from emily.stack.process import pid_alive, wait_until
from tests.conftest import make_settings
from tests.fixtures.llm import LlmServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

USER = [{"role": "user", "content": "Say hello."}]
SLOW = 240.0


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Stack]]:
    settings = make_settings(tmp_path_factory.mktemp("state-llm2"))
    stack = Stack(settings)
    stack.up(["llm"])
    try:
        yield settings, stack
    finally:
        stack.down()


def _crash(stack: Stack) -> None:
    """SIGKILL the server, as a crash would: the stack still believes it runs."""
    record = stack.record("llm")
    assert record is not None and record.pid is not None
    os.kill(record.pid, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(record.pid), 10)


def _client_settings(
    base: Settings, backends: list[dict[str, object]], reset_timeout_s: float = 1.0
) -> Settings:
    return make_settings(
        base.state_dir,
        inference={
            "backends": backends,
            "retry": {"attempts": 2, "base_backoff_s": 0.01, "max_backoff_s": 0.05},
            "breaker": {"failure_threshold": 2, "reset_timeout_s": reset_timeout_s},
        },
    )


async def test_killed_backend_opens_circuit_fails_fast_and_recovers(
    second: tuple[Settings, Stack],
) -> None:
    base, stack = second
    settings = _client_settings(base, [{"name": "solo"}])
    sent: list[str] = []

    async def count(request: httpx2.Request) -> None:
        sent.append(str(request.url))

    http = httpx2.AsyncClient(event_hooks={"request": [count]}, timeout=60.0)
    async with InferenceClient.from_settings(settings, http_client=http) as client:
        assert (await client.chat(USER, max_tokens=2, deadline_s=SLOW)).backend == "solo"
        _crash(stack)  # the backend dies mid-suite

        with pytest.raises(BackendUnavailable) as failed:
            await client.chat(USER, max_tokens=2, deadline_s=SLOW)
        assert not isinstance(failed.value, CircuitOpen)
        assert client.breaker_states() == {"solo": "open"}

        before = len(sent)
        started = time.perf_counter()
        with pytest.raises(CircuitOpen, match="circuit open"):
            await client.chat(USER, max_tokens=2)
        fail_fast_ms = (time.perf_counter() - started) * 1000
        assert len(sent) == before  # answered by the open circuit, no network attempt
        print(f"fail-fast with open circuit: {fail_fast_ms:.3f} ms")

        stack.up(["llm"])
        await asyncio.sleep(1.0)  # the reset timeout: next request is the half-open trial
        assert client.breaker_states() == {"solo": "half-open"}
        result = await client.chat(USER, max_tokens=2, deadline_s=SLOW)
        assert result.backend == "solo"
        assert client.breaker_states() == {"solo": "closed"}
    await http.aclose()


async def test_fallback_to_second_backend(
    second: tuple[Settings, Stack], llm_server: LlmServer
) -> None:
    base, stack = second
    settings = _client_settings(
        base,
        [{"name": "primary"}, {"name": "secondary", "base_url": llm_server.base_url}],
        reset_timeout_s=600.0,  # stays open however slow the shared CPU makes the fallback
    )
    async with InferenceClient.from_settings(settings) as client:
        first = await client.chat(USER, max_tokens=2, deadline_s=SLOW)
        assert first.backend == "primary"
        _crash(stack)
        try:
            fallback = await client.chat(USER, max_tokens=2, deadline_s=SLOW)
            assert fallback.backend == "secondary"
            assert client.breaker_states()["primary"] == "open"
            # The open circuit skips the dead primary without a connection attempt.
            again = await client.chat(USER, max_tokens=2, deadline_s=SLOW)
            assert again.backend == "secondary"
            health = await client.health()
            assert health == {"primary": False, "secondary": True}
        finally:
            stack.up(["llm"])


async def test_every_backend_down(tmp_path: Path) -> None:
    settings = _client_settings(
        make_settings(tmp_path / "nothing-up"),
        [{"name": "local"}, {"name": "gone", "base_url": "http://127.0.0.1:9/v1"}],
    )
    async with InferenceClient.from_settings(settings) as client:
        with pytest.raises(BackendUnavailable, match="emily up") as failed:
            await client.chat(USER, max_tokens=2)
        assert "gone" in str(failed.value)
        with pytest.raises(CircuitOpen, match="every backend"):
            await client.chat(USER, max_tokens=2, backend="gone")
