"""The local llama-server requires its API key (``--api-key-file``), and every request our
client sends carries it: chat, streams, completions, ``/v1/models``, the ``/props`` and
``/health`` probes, the bench. A client without the key is refused with a typed error."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from emily import locator
from emily.config import Settings
from emily.errors import ConfigError
from emily.inference.backends import server_root
from emily.inference.bench import BenchConfig, bench_settings, url_key
from emily.inference.client import InferenceClient
from emily.inference.errors import ApiKeyRefusedError, BackendUnavailable
from emily.inference.schemas import CognitionProposal
from emily.inference.settings import BackendSettings
from tests.fixtures.llm import LlmServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

SLOW = 240.0
USER = [{"role": "user", "content": "Say hello."}]


class Seen:
    """(path, Authorization header) of every request leaving the client (an event hook on the
    real transport, before sending)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []

    async def __call__(self, request: httpx2.Request) -> None:
        self.requests.append((request.url.path, request.headers.get("authorization")))


def _key(server: LlmServer) -> str:
    key = locator.llm_api_key(server.settings)
    assert key, "the local stack generated no llama-server key"
    return key


def _with_backend(server: LlmServer, **backend: object) -> Settings:
    config = BackendSettings.model_validate(
        {"name": "x", "base_url": server.base_url, "timeout_s": SLOW, **backend}
    )
    inference = server.settings.inference.model_copy(update={"backends": [config]})
    return server.settings.model_copy(update={"inference": inference})


async def test_server_refuses_requests_without_the_key(llm_server: LlmServer) -> None:
    root, key = server_root(llm_server.base_url), _key(llm_server)
    body = {"messages": USER, "max_tokens": 2}
    async with httpx2.AsyncClient(timeout=SLOW) as http:
        anonymous = await http.post(f"{root}/v1/chat/completions", json=body)
        wrong = await http.post(
            f"{root}/v1/chat/completions",
            json=body,
            headers={"Authorization": "Bearer not-the-key"},
        )
        keyed = await http.post(
            f"{root}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )
        props_anonymous = await http.get(f"{root}/props")
        props_keyed = await http.get(f"{root}/props", headers={"Authorization": f"Bearer {key}"})
        health = await http.get(f"{root}/health")
    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert keyed.status_code == 200 and keyed.json()["choices"]
    assert props_anonymous.status_code == 401 and props_keyed.status_code == 200
    # Documented exposure: llama-server keeps /health public (readiness, no model access).
    assert health.status_code == 200


async def test_every_request_of_the_client_carries_the_key(llm_server: LlmServer) -> None:
    seen = Seen()
    http = httpx2.AsyncClient(event_hooks={"request": [seen]}, timeout=SLOW)
    async with InferenceClient.from_settings(llm_server.settings, http_client=http) as client:
        assert (await client.chat(USER, max_tokens=2, deadline_s=SLOW)).text
        assert (await client.chat(USER, max_tokens=2, stream=True, deadline_s=SLOW)).text
        assert [piece async for piece in client.stream_chat(USER, max_tokens=2)]
        assert (await client.complete("Once upon", max_tokens=2, deadline_s=SLOW)).text
        structured = await client.generate_structured(
            [{"role": "user", "content": "One policy for a tired user."}],
            CognitionProposal,
            max_tokens=300,
            deadline_s=SLOW,
        )
        assert structured.value.policies
        assert await client.health() == {"local": True}
        assert await client.key_checks() == {"local": True}
    await http.aclose()
    paths = {path for path, _ in seen.requests}
    assert {"/v1/models", "/v1/chat/completions", "/v1/completions", "/props", "/health"} <= paths
    assert {auth for _, auth in seen.requests} == {f"Bearer {_key(llm_server)}"}


@pytest.mark.parametrize("api_key", [None, "not-the-key"])
async def test_client_without_the_right_key_is_refused(
    llm_server: LlmServer, api_key: str | None
) -> None:
    alias = llm_server.settings.inference.server.model_alias
    seen = Seen()
    http = httpx2.AsyncClient(event_hooks={"request": [seen]}, timeout=SLOW)
    settings = _with_backend(llm_server, api_key=api_key, model=alias)
    async with InferenceClient.from_settings(settings, http_client=http) as client:
        with pytest.raises(ApiKeyRefusedError, match="HTTP 401") as refused:
            await client.chat(USER, max_tokens=2, deadline_s=SLOW)
        assert refused.value.field == "x" and "api_key" in (refused.value.hint or "")
        assert not isinstance(refused.value, BackendUnavailable)  # not an outage: no fallback
        assert len(seen.requests) == 1  # a refusal is not retried
        assert client.breaker_states() == {"x": "closed"}  # the server is alive
        # The kind probe does not mistake the refusal for "not llama.cpp".
        with pytest.raises(ApiKeyRefusedError, match="/props"):
            await client.backend("x").kind()
        assert await client.key_checks() == {"x": False}
    await http.aclose()
    keyed = _with_backend(llm_server, api_key=_key(llm_server), model=alias)
    async with InferenceClient.from_settings(keyed) as client:
        assert (await client.chat(USER, max_tokens=2, deadline_s=SLOW)).backend == "x"
        assert await client.backend("x").kind() == "llama-cpp"


async def test_bench_sends_the_local_key_or_the_key_file(
    llm_server: LlmServer, tmp_path: Path
) -> None:
    settings, key = llm_server.settings, _key(llm_server)
    local = bench_settings(settings, BenchConfig(urls=[llm_server.base_url + "/"]))
    sent = local.inference.backends[0].api_key
    assert sent is not None and sent.get_secret_value() == key
    other = bench_settings(settings, BenchConfig(urls=["http://127.0.0.1:9/v1"]))
    assert other.inference.backends[0].api_key is None
    key_file = tmp_path / "key"
    key_file.write_text("from-the-file\n")
    assert url_key(settings, "http://127.0.0.1:9/v1", key_file) == "from-the-file"
    key_file.write_text("  \n")
    with pytest.raises(ConfigError, match="empty") as empty:
        url_key(settings, "http://127.0.0.1:9/v1", key_file)
    assert empty.value.field == "--api-key-file"
    with pytest.raises(ConfigError, match="cannot read"):
        url_key(settings, "http://127.0.0.1:9/v1", tmp_path / "missing")
