"""The one request shape behind chat, streamed chat, text streams and completions."""

from __future__ import annotations

import pytest

from emily.errors import ConfigError
from emily.inference.generation import GenerationRequest, chat_messages, server_ms


def test_chat_body() -> None:
    request = GenerationRequest(messages=chat_messages([{"role": "user", "content": "hi"}]))
    assert request.is_chat
    assert request.body("m") == {
        "model": "m",
        "max_tokens": 256,
        "temperature": 0.0,
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_streamed_body_asks_for_usage_and_passes_extra_fields() -> None:
    request = GenerationRequest(
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=8,
        temperature=0.5,
        stream=True,
        extra_body={"top_k": 5},
    )
    body = request.body("m")
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["extra_body"] == {"top_k": 5}
    assert (body["max_tokens"], body["temperature"]) == (8, 0.5)


def test_completion_body_has_a_prompt_and_no_messages() -> None:
    request = GenerationRequest(prompt="Once upon", max_tokens=4)
    assert not request.is_chat
    assert request.body("m") == {
        "model": "m",
        "max_tokens": 4,
        "temperature": 0.0,
        "prompt": "Once upon",
    }


@pytest.mark.parametrize(
    "fields", [{}, {"prompt": "p", "messages": [{"role": "user", "content": "c"}]}]
)
def test_exactly_one_of_messages_and_prompt(fields: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="either messages or a prompt"):
        GenerationRequest(**fields)  # type: ignore[arg-type]


def test_message_checks_name_the_row() -> None:
    with pytest.raises(ConfigError) as bad:
        chat_messages([{"role": "user", "content": "ok"}, {"role": "user", "content": 3}])  # type: ignore[list-item]
    assert bad.value.row == 1
    with pytest.raises(ConfigError, match="at least one"):
        chat_messages([])


def test_server_time_from_llama_timings() -> None:
    assert server_ms({"timings": {"prompt_ms": 1.5, "predicted_ms": 2.0}}) == 3.5
    assert server_ms({"timings": {"prompt_ms": "x"}}) is None
    assert server_ms({"timings": 3}) is None
    assert server_ms(None) is None
