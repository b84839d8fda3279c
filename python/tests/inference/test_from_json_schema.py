"""JSON-schema files become pydantic models that validate like hand-written ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from emily.inference.errors import InvalidSchemaError
from emily.inference.from_json_schema import load_schema_file, model_from_json_schema
from emily.inference.schemas import CognitionProposal

DOCUMENT = {
    "title": "Trip plan",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "kind": {"const": "trip"},
        "mode": {"enum": ["train", "car"]},
        "stops": {
            "type": "array",
            "minItems": 1,
            "maxItems": 2,
            "items": {"$ref": "#/$defs/Stop"},
        },
        "budget": {"type": "number", "minimum": 0, "maximum": 10},
        "note": {"type": "string", "maxLength": 5},
        "meta": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
    },
    "required": ["kind", "mode", "stops"],
    "$defs": {
        "Stop": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "nights": {"type": "integer"}},
            "required": ["city", "nights"],
        }
    },
}


def test_model_validates_like_the_schema() -> None:
    model = model_from_json_schema(DOCUMENT)
    assert model.__name__ == "Tripplan"
    good = model.model_validate(
        {"kind": "trip", "mode": "car", "stops": [{"city": "Rome", "nights": 2}], "meta": {}}
    )
    assert good.model_dump()["stops"][0]["nights"] == 2
    assert good.model_dump()["note"] is None
    bad_inputs = [
        {"kind": "trip", "mode": "bus", "stops": [{"city": "Rome", "nights": 2}]},
        {"kind": "trip", "mode": "car", "stops": []},
        {"kind": "tour", "mode": "car", "stops": [{"city": "Rome", "nights": 2}]},
        {"kind": "trip", "mode": "car", "stops": [{"city": "R", "nights": 1}], "budget": 11},
        {"kind": "trip", "mode": "car", "stops": [{"city": "R", "nights": 1}], "note": "toolong"},
        {"kind": "trip", "mode": "car", "stops": [{"city": "R", "nights": 1}], "extra": 1},
    ]
    for bad in bad_inputs:
        with pytest.raises(ValidationError):
            model.model_validate(bad)


def test_round_trip_of_the_cognition_schema() -> None:
    model = model_from_json_schema(CognitionProposal.model_json_schema())
    value = {"policies": [{"action": "rest", "rationale": "tired", "expected_valence": 0.4}]}
    assert model.model_validate(value).model_dump() == value
    with pytest.raises(ValidationError):
        model.model_validate({"policies": [{**value["policies"][0], "expected_valence": 2}]})


def test_unsupported_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(InvalidSchemaError, match="unsupported"):
        model_from_json_schema({"type": "object", "properties": {"x": {"type": "null"}}})
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    with pytest.raises(InvalidSchemaError, match="JSON object"):
        load_schema_file(listed)
    with pytest.raises(InvalidSchemaError, match="cannot read"):
        load_schema_file(tmp_path / "missing.json")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(DOCUMENT))
    assert load_schema_file(good).model_json_schema()["required"] == ["kind", "mode", "stops"]
