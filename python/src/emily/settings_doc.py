"""Render the settings reference (``docs/configuration.md``) from the ``Settings`` model itself,
so the documentation cannot drift from the code (a test compares the two)."""

from __future__ import annotations

from collections.abc import Iterator
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from emily.config import ENV_PREFIX, NESTED_DELIMITER, Settings


def _model_of(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{value}`" for value in get_args(annotation))
    if origin in (Union, UnionType):
        names = [_type_name(arg) for arg in get_args(annotation) if arg is not type(None)]
        optional = type(None) in get_args(annotation)
        return " or ".join(names) + (" (optional)" if optional else "")
    if origin is not None:
        return str(annotation).replace("typing.", "").replace("pathlib.", "")
    return str(getattr(annotation, "__name__", annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "(computed)"
    if field.default is PydanticUndefined:
        return "(required)"
    if isinstance(field.default, BaseModel):
        return "(section)"
    return repr(field.default)


def iter_settings(
    model: type[BaseModel] = Settings, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, FieldInfo, bool]]:
    """Yield ``(ENV_NAME, field, is_secret)`` for every leaf setting, depth first."""
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        nested = _model_of(field.annotation)
        if nested is not None and not _is_list(field.annotation):
            yield from iter_settings(nested, path)
            continue
        env = ENV_PREFIX + NESTED_DELIMITER.join(part.upper() for part in path)
        yield env, field, _is_secret(field.annotation)


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is list


def render_markdown() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from `emily.config.Settings` by `emily config docs`; do not edit by hand.",
        "",
        "Every setting is an environment variable (nested sections joined with `__`), a key in",
        "the TOML file named by `EMILY_CONFIG`, or, for any of them, `<NAME>_FILE` holding a",
        "path whose content is the value (use this for secrets: systemd credentials).",
        "",
        "| variable | type | default | description |",
        "| --- | --- | --- | --- |",
    ]
    for env, field, secret in iter_settings():
        kind = "secret" if secret else _type_name(field.annotation)
        description = (field.description or "").replace("|", "\\|")
        default = _default(field).replace("|", "\\|")
        lines.append(f"| `{env}` | {kind} | `{default}` | {description} |")
    return "\n".join(lines) + "\n"
