"""Schema checks and per-backend translation (pure functions)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from pydantic import BaseModel, Field

from emily.inference.errors import InvalidSchemaError
from emily.inference.schema import check_json_schema, json_schema_of, response_format
from emily.inference.schemas import CognitionProposal


class Event(BaseModel):
    day: datetime.date
    hours: int = Field(ge=0, le=24)
    share: float = Field(gt=0, lt=0.05)


def test_llama_cpp_form_enumerates_bounded_floats() -> None:
    document = json_schema_of(CognitionProposal)
    fmt = response_format(document, "llama-cpp", "CognitionProposal")
    assert fmt["type"] == "json_object"
    valence = fmt["schema"]["$defs"]["Policy"]["properties"]["expected_valence"]
    assert "minimum" not in valence and "type" not in valence
    assert valence["enum"][0] == -1.0 and valence["enum"][-1] == 1.0
    assert len(valence["enum"]) == 201
    # The original document is untouched (SGLang gets it as is).
    assert document["$defs"]["Policy"]["properties"]["expected_valence"]["maximum"] == 1.0


def test_exclusive_bounds_and_integers() -> None:
    fmt = response_format(json_schema_of(Event), "llama-cpp", "Event")
    share = fmt["schema"]["properties"]["share"]
    assert share["enum"] == [0.01, 0.02, 0.03, 0.04]
    assert fmt["schema"]["properties"]["hours"] == {
        "maximum": 24,
        "minimum": 0,
        "title": "Hours",
        "type": "integer",
    }


def test_sglang_form_is_openai_json_schema() -> None:
    document = json_schema_of(Event)
    fmt = response_format(document, "sglang", "my schema!")
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "my_schema_"
    assert fmt["json_schema"]["schema"] == document
    assert fmt["json_schema"]["strict"] is True
    # The body goes over the wire as JSON: it must survive a round trip unchanged.
    assert json.loads(json.dumps(fmt)) == fmt


def test_supported_string_format_is_kept_for_both_servers() -> None:
    document = json_schema_of(Event)
    assert document["properties"]["day"] == {"format": "date", "title": "Day", "type": "string"}
    llama = response_format(document, "llama-cpp", "Event")["schema"]["properties"]["day"]
    sglang = response_format(document, "sglang", "Event")["json_schema"]["schema"]
    assert llama["format"] == "date" and sglang["properties"]["day"]["format"] == "date"


def test_empty_name_falls_back() -> None:
    fmt = response_format(json_schema_of(Event), "sglang", "")
    assert fmt["json_schema"]["name"] == "schema"
    long_name = response_format(json_schema_of(Event), "sglang", "x" * 100)
    assert long_name["json_schema"]["name"] == "x" * 64


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"type": "array"}, "top level"),
        ({"type": "object", "properties": {"a": {"not": {}}}}, "'not'"),
        ({"type": "object", "properties": {"a": {"type": "string", "format": "email"}}}, "email"),
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/B"}}}, "undefined"),
        ({"type": "object", "properties": {"a": {"$ref": "http://x/y"}}}, "local"),
        (
            {
                "type": "object",
                "properties": {"a": {"$ref": "#/$defs/A"}},
                "$defs": {
                    "A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/B"}}},
                    "B": {"type": "array", "items": {"$ref": "#/$defs/A"}},
                },
            },
            "A → B → A",
        ),
        (
            {"type": "object", "properties": {"x": {"type": "number", "minimum": 0}}},
            "both",
        ),
        (
            {
                "type": "object",
                "properties": {"x": {"type": "number", "minimum": 0, "maximum": 1e6}},
            },
            "too wide",
        ),
        (
            {
                "type": "object",
                "properties": {
                    "x": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.01}
                },
            },
            "empty",
        ),
    ],
)
def test_rejections(document: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSchemaError, match=message):
        check_json_schema(document)


def test_enum_and_defaults_are_values_not_schemas() -> None:
    # `not` and `if` inside enum/default are data: accepted there and sent unchanged ...
    document = {
        "type": "object",
        "properties": {"a": {"enum": [{"not": 1}], "default": {"if": 2}}},
    }
    assert check_json_schema(document) is None
    sent = response_format(document, "llama-cpp", "A")["schema"]["properties"]["a"]
    assert sent == {"enum": [{"not": 1}], "default": {"if": 2}}
    # ... while the same keyword as a schema keyword is refused.
    with pytest.raises(InvalidSchemaError, match="'not'"):
        check_json_schema({"type": "object", "properties": {"a": {"not": {"enum": [1]}}}})


def test_model_without_json_schema() -> None:
    class Thing:
        pass

    class Opaque(BaseModel):
        model_config = {"arbitrary_types_allowed": True}
        thing: Thing

    with pytest.raises(InvalidSchemaError, match="no JSON schema"):
        json_schema_of(Opaque)
