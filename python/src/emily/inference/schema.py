"""JSON-schema checks and per-backend translation for constrained generation.

Both servers compile the schema into a grammar (llama.cpp: GBNF via json-schema-to-grammar;
SGLang: xgrammar). What a grammar cannot express would only be checked after generation, so such
schemas are rejected up front with ``InvalidSchemaError``, before any request:

* anything but a pydantic ``BaseModel`` subclass;
* recursive ``$ref`` cycles (a grammar for them may never terminate within ``max_tokens``);
* keywords neither grammar compiler enforces (``not``, ``if``/``then``/``else``, ``uniqueItems``,
  ``multipleOf``, ``patternProperties``, ...) and string formats other than date/time/uuid;
* float bounds (``ge``/``le`` on a ``float``) that are not a small closed range: llama.cpp's
  grammar has no numeric ranges for non-integers, so a closed range is sent as an enumeration of
  its values at 0.01 steps (``[-1, 1]`` → 201 literals) — exact, and only possible when small.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from pydantic import BaseModel

from emily.inference.errors import InvalidSchemaError

UNSUPPORTED_KEYWORDS = frozenset(
    {
        "not",
        "if",
        "then",
        "else",
        "uniqueItems",
        "multipleOf",
        "patternProperties",
        "propertyNames",
        "dependentRequired",
        "dependentSchemas",
        "unevaluatedProperties",
        "unevaluatedItems",
        "contains",
        "minContains",
        "maxContains",
        "$dynamicRef",
        "minProperties",
        "maxProperties",
    }
)
SUPPORTED_FORMATS = frozenset({"date", "time", "date-time", "uuid"})
NUMBER_STEP = 0.01
MAX_NUMBER_LITERALS = 2001
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def json_schema_of(schema: object) -> dict[str, Any]:
    """The model's JSON schema after every grammar check; raises ``InvalidSchemaError``."""
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise InvalidSchemaError(
            f"schema must be a pydantic BaseModel subclass, got {schema!r}", field="schema"
        )
    try:
        document = schema.model_json_schema()
    except Exception as exc:  # pydantic raises several types for unrepresentable fields
        raise InvalidSchemaError(
            f"{schema.__name__} has no JSON schema: {exc}", field="schema"
        ) from exc
    check_json_schema(document)
    return document


def check_json_schema(document: dict[str, Any]) -> None:
    """Raise ``InvalidSchemaError`` for anything a generation grammar cannot enforce."""
    if document.get("type") != "object":
        raise InvalidSchemaError("the top level must be an object", field="type")
    _check_no_cycles(document)
    _walk(document, "#")


def _ref_target(ref: str) -> str:
    prefix = "#/$defs/"
    if not ref.startswith(prefix):
        raise InvalidSchemaError(f"only local $defs references are supported: {ref}", field="$ref")
    return ref[len(prefix) :]


def _refs_in(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(_ref_target(value))
            elif key != "$defs":
                found |= _refs_in(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs_in(item)
    return found


def _check_no_cycles(document: dict[str, Any]) -> None:
    definitions: dict[str, Any] = document.get("$defs", {})
    edges = {name: _refs_in(body) for name, body in definitions.items()}
    for name in _refs_in(document) - set(definitions):
        raise InvalidSchemaError(f"$ref to undefined {name}", field="$ref")

    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = " → ".join([*visiting[visiting.index(name) :], name])
            raise InvalidSchemaError(f"recursive schema ({cycle})", field="$ref")
        visiting.append(name)
        for target in edges.get(name, set()):
            visit(target)
        visiting.pop()
        done.add(name)

    for name in _refs_in(document):
        visit(name)


def _walk(node: Any, path: str) -> None:
    if isinstance(node, list):
        for index, item in enumerate(node):
            _walk(item, f"{path}/{index}")
        return
    if not isinstance(node, dict):
        return
    for key in node:
        if key in UNSUPPORTED_KEYWORDS:
            raise InvalidSchemaError(
                f"keyword '{key}' cannot be enforced by the generation grammar", field=path
            )
    fmt = node.get("format")
    if node.get("type") == "string" and fmt is not None and fmt not in SUPPORTED_FORMATS:
        raise InvalidSchemaError(f"string format '{fmt}' is not supported", field=path)
    if node.get("type") == "number" and any(bound in node for bound in _BOUNDS):
        number_literals(node, path)
    for key, value in node.items():
        if key in ("properties", "$defs") and isinstance(value, dict):
            for name, sub in value.items():
                _walk(sub, f"{path}/{key}/{name}")
        elif key not in ("enum", "const", "default", "examples"):
            _walk(value, f"{path}/{key}")


def number_literals(node: dict[str, Any], path: str = "#") -> list[float]:
    """The values of a bounded float at ``NUMBER_STEP`` resolution, or ``InvalidSchemaError``."""
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum", node.get("exclusiveMaximum"))
    if low is None or high is None:
        raise InvalidSchemaError(
            "a float bound needs both a lower and an upper bound (or use an int)", field=path
        )
    first = math.ceil(round(low / NUMBER_STEP, 6))
    last = math.floor(round(high / NUMBER_STEP, 6))
    if last - first + 1 > MAX_NUMBER_LITERALS:
        raise InvalidSchemaError(
            f"float range [{low}, {high}] is too wide to enumerate at {NUMBER_STEP} steps",
            field=path,
        )
    values = [round(step * NUMBER_STEP, 2) for step in range(first, last + 1)]
    if "exclusiveMinimum" in node:
        values = [v for v in values if v > node["exclusiveMinimum"]]
    if "exclusiveMaximum" in node:
        values = [v for v in values if v < node["exclusiveMaximum"]]
    if not values:
        raise InvalidSchemaError(f"float range [{low}, {high}] is empty", field=path)
    return values


def _to_llama_cpp(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_llama_cpp(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("type") == "number" and any(bound in node for bound in _BOUNDS):
        kept = {k: v for k, v in node.items() if k not in (*_BOUNDS, "type")}
        return {**kept, "enum": number_literals(node)}
    return {
        key: value if key in ("enum", "const", "default") else _to_llama_cpp(value)
        for key, value in node.items()
    }


def response_format(document: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    """The ``response_format`` body for one backend kind.

    llama.cpp's server takes ``{"type": "json_object", "schema": ...}``; SGLang (and OpenAI)
    take ``{"type": "json_schema", "json_schema": {"name": ..., "schema": ...}}``.
    """
    if kind == "llama-cpp":
        return {"type": "json_object", "schema": _to_llama_cpp(copy.deepcopy(document))}
    safe_name = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64] or "schema"
    return {
        "type": "json_schema",
        "json_schema": {"name": safe_name, "schema": document, "strict": True},
    }
