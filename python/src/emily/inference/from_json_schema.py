"""Build a pydantic model from a JSON-schema document (``emily infer chat --schema FILE``), so a
schema file is validated exactly like a model class. Covers what generation grammars can
enforce: objects, arrays, strings, numbers, booleans, enums and local ``$defs`` references."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from emily.inference.errors import InvalidSchemaError
from emily.inference.schema import check_json_schema

_CONSTRAINTS = {
    "minLength": "min_length",
    "maxLength": "max_length",
    "pattern": "pattern",
    "minimum": "ge",
    "maximum": "le",
    "exclusiveMinimum": "gt",
    "exclusiveMaximum": "lt",
    "minItems": "min_length",
    "maxItems": "max_length",
}
_SCALARS: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}


class _Builder:
    def __init__(self, document: dict[str, Any]) -> None:
        self.definitions: dict[str, Any] = document.get("$defs", {})
        self.models: dict[str, type[BaseModel]] = {}

    def annotation(self, node: dict[str, Any], name: str, path: str) -> Any:
        if "$ref" in node:
            target = node["$ref"].rsplit("/", 1)[-1]
            if target not in self.models:
                self.models[target] = self.model(self.definitions[target], target, path)
            return self.models[target]
        if "enum" in node:
            return Literal[tuple(node["enum"])]
        if "const" in node:
            return Literal[node["const"]]
        kind = node.get("type")
        if kind in _SCALARS:
            return _SCALARS[kind]
        if kind == "array":
            return list[self.annotation(node.get("items", {}), name, f"{path}/items")]  # type: ignore[misc]
        if kind == "object":
            return self.model(node, name, path)
        raise InvalidSchemaError(f"unsupported schema node {json.dumps(node)[:80]}", field=path)

    def model(self, node: dict[str, Any], name: str, path: str) -> type[BaseModel]:
        required = set(node.get("required", []))
        fields: dict[str, Any] = {}
        for prop, sub in node.get("properties", {}).items():
            constraints = {_CONSTRAINTS[k]: v for k, v in sub.items() if k in _CONSTRAINTS}
            annotation = self.annotation(sub, prop.title().replace("_", ""), f"{path}/{prop}")
            if prop in required:
                fields[prop] = (annotation, Field(**constraints))
            else:
                fields[prop] = (annotation | None, Field(default=None, **constraints))
        extra: Literal["forbid", "ignore"] = (
            "forbid" if node.get("additionalProperties") is False else "ignore"
        )
        title = str(node.get("title", name)).replace(" ", "") or name
        model: type[BaseModel] = create_model(  # type: ignore[call-overload]
            title, __config__=ConfigDict(extra=extra), **fields
        )
        return model


def model_from_json_schema(document: dict[str, Any]) -> type[BaseModel]:
    check_json_schema(document)
    return _Builder(document).model(document, "Answer", "#")


def load_schema_file(path: Path) -> type[BaseModel]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidSchemaError(f"cannot read JSON schema {path}: {exc}", field="schema") from exc
    if not isinstance(document, dict):
        raise InvalidSchemaError(f"{path} does not hold a JSON object", field="schema")
    return model_from_json_schema(document)
