"""The client against the real local llama-server (session fixture ``llm_server``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

import httpx2
import pytest
from pydantic import BaseModel, ConfigDict, Field

from emily.errors import ConfigError
from emily.inference.client import InferenceClient
from emily.inference.errors import (
    DeadlineExceeded,
    InferenceError,
    InvalidSchemaError,
    InvalidStructuredOutput,
)
from emily.inference.schemas import COGNITION_SYSTEM_PROMPT, CognitionProposal
from tests.fixtures.llm import LlmServer

# One event loop for the module: the HTTP clients of fixtures and tests must share it.
pytestmark = pytest.mark.asyncio(loop_scope="session")


class Counter:
    """Counts HTTP requests leaving the client (an observer on a real transport, no mock)."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    async def __call__(self, request: httpx2.Request) -> None:
        self.requests.append(f"{request.method} {request.url.path}")


@pytest.fixture
async def counted(llm_server: LlmServer) -> AsyncIterator[tuple[InferenceClient, Counter]]:
    counter = Counter()
    http = httpx2.AsyncClient(event_hooks={"request": [counter]}, timeout=60.0)
    client = InferenceClient.from_settings(llm_server.settings, http_client=http)
    try:
        yield client, counter
    finally:
        await client.aclose()
        await http.aclose()


class Sentiment(BaseModel):
    label: Literal["positive", "negative", "neutral"]
    score: int = Field(ge=0, le=10)


class Pet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=12)
    legs: int = Field(ge=0, le=8)


class Household(BaseModel):
    city: str = Field(max_length=16)
    pets: list[Pet] = Field(min_length=1, max_length=2)


class Recursive(BaseModel):
    name: str
    children: list[Recursive] = []


class Tagged(BaseModel):
    tags: list[str] = Field(json_schema_extra={"uniqueItems": True})


class Unbounded(BaseModel):
    weight: float = Field(ge=0)


# The CPU may be shared with other work: deadlines here are generous, never asserted upon.
SLOW = 240.0
USER = [{"role": "user", "content": "Write one short sentence about the sea."}]


async def test_plain_chat_reports_usage_and_server_time(llm_server: LlmServer) -> None:
    async with InferenceClient.from_settings(llm_server.settings) as client:
        result = await client.chat(USER, max_tokens=8, deadline_s=SLOW)
    assert result.text
    assert result.backend == "local"
    assert result.model == llm_server.settings.inference.server.model_alias
    assert 0 < result.usage.completion_tokens <= 8
    assert result.usage.prompt_tokens > 0
    assert result.server_ms is not None and result.server_ms > 0
    assert result.latency_ms > 0 and result.ttft_ms is None


async def test_streamed_chat_captures_ttft_and_gaps(llm_server: LlmServer) -> None:
    async with InferenceClient.from_settings(llm_server.settings) as client:
        result = await client.chat(USER, max_tokens=8, stream=True, deadline_s=SLOW)
        pieces = [piece async for piece in client.stream_chat(USER, max_tokens=4)]
    assert result.text and result.ttft_ms is not None
    assert result.ttft_ms <= result.latency_ms
    assert len(result.inter_token_ms) >= 1
    assert result.usage.completion_tokens == 8
    assert result.server_ms is not None
    assert pieces and "".join(pieces)


async def test_completion_endpoint(llm_server: LlmServer) -> None:
    async with InferenceClient.from_settings(llm_server.settings) as client:
        result = await client.complete("The capital of France is", max_tokens=4, deadline_s=SLOW)
    assert result.text and result.usage.completion_tokens <= 4


@pytest.mark.parametrize(
    ("schema", "prompt"),
    [
        (Sentiment, "Classify the sentiment of: 'I love this sunny day!'"),
        (Household, "Describe a household in Paris with a cat named Tom."),
    ],
)
async def test_structured_output_parses_into_model(
    llm_server: LlmServer, schema: type[BaseModel], prompt: str
) -> None:
    async with InferenceClient.from_settings(llm_server.settings) as client:
        result = await client.generate_structured(
            [{"role": "user", "content": prompt}], schema, max_tokens=120, deadline_s=SLOW
        )
    assert isinstance(result.value, schema)
    assert result.attempts in (1, 2)
    assert result.usage.completion_tokens > 0


async def test_cognition_schema(llm_server: LlmServer) -> None:
    async with InferenceClient.from_settings(llm_server.settings) as client:
        result = await client.generate_structured(
            [
                {"role": "system", "content": COGNITION_SYSTEM_PROMPT},
                {"role": "user", "content": "The user is tired. One policy is enough."},
            ],
            CognitionProposal,
            max_tokens=300,
            deadline_s=SLOW,
        )
    assert 1 <= len(result.value.policies) <= 3
    assert all(-1.0 <= p.expected_valence <= 1.0 for p in result.value.policies)


@pytest.mark.parametrize("schema", [Recursive, Tagged, Unbounded, dict, int])
async def test_invalid_schema_rejected_before_any_request(
    counted: tuple[InferenceClient, Counter], schema: type[BaseModel]
) -> None:
    client, counter = counted
    with pytest.raises(InvalidSchemaError):
        await client.generate_structured(USER, schema)
    assert counter.requests == []


async def test_truncated_output_retried_once_then_raises(
    counted: tuple[InferenceClient, Counter],
) -> None:
    client, counter = counted
    with pytest.raises(InvalidStructuredOutput, match="max_tokens"):
        await client.generate_structured(
            [{"role": "user", "content": "Describe a household."}],
            Household,
            max_tokens=3,
            deadline_s=SLOW,
        )
    completions = [r for r in counter.requests if r.endswith("/chat/completions")]
    assert len(completions) == 2


async def test_deadline_exceeded_on_long_generation(llm_server: LlmServer) -> None:
    async with InferenceClient.from_settings(llm_server.settings) as client:
        with pytest.raises(DeadlineExceeded, match=r"0\.3s"):
            await client.chat(
                [{"role": "user", "content": "Write a very long story."}],
                max_tokens=4000,
                deadline_s=0.3,
            )


async def test_bad_request_is_not_retried(counted: tuple[InferenceClient, Counter]) -> None:
    client, counter = counted
    with pytest.raises(InferenceError, match="rejected") as caught:
        await client.chat(USER, max_tokens=2, extra_body={"response_format": {"type": "bogus"}})
    assert type(caught.value) is InferenceError
    completions = [r for r in counter.requests if r.endswith("/chat/completions")]
    assert len(completions) == 1
    assert client.breaker_states() == {"local": "closed"}


async def test_health_kind_and_input_checks(llm_server: LlmServer) -> None:
    async with InferenceClient.from_settings(llm_server.settings) as client:
        assert await client.health() == {"local": True}
        assert await client.backend("local").kind() == "llama-cpp"
        with pytest.raises(ConfigError, match="unknown backend"):
            await client.chat(USER, backend="nope")
        with pytest.raises(ConfigError, match="row 0"):
            await client.chat([{"role": "user"}])
        with pytest.raises(ConfigError, match="at least one"):
            await client.chat([])
