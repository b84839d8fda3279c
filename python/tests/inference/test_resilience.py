"""Circuit breaker and fallback against real servers: a second local llama-server instance
(its own state directory) is killed and restarted mid-test. The breakers run on an injected
manual clock, so no test sleeps out a reset timeout and none depends on the CPU's speed."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from emily import locator
from emily.config import Settings
from emily.inference.backends import server_root
from emily.inference.client import InferenceClient
from emily.inference.errors import BackendUnavailable, CircuitOpen
from emily.stack.manager import Stack
from emily.stack.process import pid_alive, wait_until
from tests.conftest import make_settings
from tests.fixtures.llm import LlmServer
from tests.inference.clock import ManualClock

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


class Sent:
    """Every HTTP request that leaves the client, recorded by an httpx2 event hook before it
    is sent (so refused connections count too): an observer on the real transport."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    async def __call__(self, request: httpx2.Request) -> None:
        self.urls.append(str(request.url))

    def since(self, mark: int) -> list[str]:
        return self.urls[mark:]


async def test_killed_backend_opens_circuit_fails_fast_and_recovers(
    second: tuple[Settings, Stack],
) -> None:
    base, stack = second
    settings = _client_settings(base, [{"name": "solo"}], reset_timeout_s=5.0)
    clock = ManualClock()  # the breaker's time moves only when this test moves it
    sent = Sent()
    http = httpx2.AsyncClient(event_hooks={"request": [sent]}, timeout=60.0)
    async with InferenceClient.from_settings(settings, http_client=http, clock=clock) as client:
        assert (await client.chat(USER, max_tokens=2, deadline_s=SLOW)).backend == "solo"
        _crash(stack)  # the backend dies mid-suite

        mark = len(sent.urls)
        with pytest.raises(BackendUnavailable) as failed:
            await client.chat(USER, max_tokens=2, deadline_s=SLOW)
        assert not isinstance(failed.value, CircuitOpen)
        # Both attempts (retry.attempts = 2) went out and failed; the second opened the circuit.
        assert [url.rsplit("/", 2)[-2:] for url in sent.since(mark)] == [
            ["chat", "completions"]
        ] * 2
        assert client.breaker_states() == {"solo": "open"}

        # Fail fast: the open circuit answers, naming the time to the trial on the injected
        # clock, and no request leaves the client (not even a refused connection).
        mark = len(sent.urls)
        with pytest.raises(CircuitOpen, match=r"next trial in 5\.0s"):
            await client.chat(USER, max_tokens=2)
        clock.advance(4.9)
        with pytest.raises(CircuitOpen, match=r"next trial in 0\.1s"):
            await client.chat(USER, max_tokens=2)
        assert sent.since(mark) == []

        stack.up(["llm"])
        clock.advance(0.1)  # the reset timeout has passed: the next request is the trial
        assert client.breaker_states() == {"solo": "half-open"}
        result = await client.chat(USER, max_tokens=2, deadline_s=SLOW)
        assert result.backend == "solo"
        assert len(sent.since(mark)) == 1  # exactly one trial request
        assert client.breaker_states() == {"solo": "closed"}
    await http.aclose()


async def test_fallback_to_second_backend(
    second: tuple[Settings, Stack], llm_server: LlmServer
) -> None:
    base, stack = second
    secondary_key = locator.llm_api_key(llm_server.settings)
    assert secondary_key is not None
    settings = _client_settings(
        base,
        [
            {"name": "primary"},
            {"name": "secondary", "base_url": llm_server.base_url, "api_key": secondary_key},
        ],
    )
    primary_root = server_root(locator.llm_base_url(base))
    sent = Sent()
    http = httpx2.AsyncClient(event_hooks={"request": [sent]}, timeout=60.0)
    # A frozen clock: the primary's circuit stays open however slow the shared CPU is.
    async with InferenceClient.from_settings(
        settings, http_client=http, clock=ManualClock()
    ) as client:
        first = await client.chat(USER, max_tokens=2, deadline_s=SLOW)
        assert first.backend == "primary"
        _crash(stack)
        try:
            fallback = await client.chat(USER, max_tokens=2, deadline_s=SLOW)
            assert fallback.backend == "secondary"
            assert client.breaker_states()["primary"] == "open"
            # The open circuit skips the dead primary without a connection attempt.
            mark = len(sent.urls)
            again = await client.chat(USER, max_tokens=2, deadline_s=SLOW)
            assert again.backend == "secondary"
            assert sent.since(mark)
            assert not [url for url in sent.since(mark) if url.startswith(primary_root)]
            health = await client.health()
            assert health == {"primary": False, "secondary": True}
        finally:
            stack.up(["llm"])
    await http.aclose()


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
