"""Checks of a push batch before anything is written (pure Python: the agent uses it too).

Feast checks almost nothing on push: a string timestamp, a timestamp a month ahead (which then
blocks every real update of that entity, the newest event winning), an integer for a string key,
NaN, extra or missing columns are written as they come. Every batch is checked here first, as a
whole: the first problem is a :class:`FeaturePushError` naming the column (``field``) and the
1-based row, and nothing of the batch is sent to either store.

A valid row has exactly: the push source's entity key (a string of the entity's pattern), the
event timestamp ``occurred_at`` (timezone-aware, not in the future beyond the tolerated clock skew),
optionally ``created_at`` (aware), and every feature of the views the source feeds, of its type
(floats finite; null only where the definition allows it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from emily.errors import EmilyError
from emily.features.schema import PUSH_SOURCES, FieldDef, PushSourceDef

INT64 = (-(2**63), 2**63 - 1)


class FeaturePushError(EmilyError):
    """A push batch was refused before anything was written."""


def _source(name: str) -> PushSourceDef:
    for source in PUSH_SOURCES:
        if source.name == name:
            return source
    known = ", ".join(s.name for s in PUSH_SOURCES)
    raise FeaturePushError(f"unknown push source {name!r} (known: {known})", field="push_source")


def _timestamp(value: Any, column: str, row: int) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise FeaturePushError(
                f"not an ISO-8601 timestamp: {value[:40]!r}", field=column, row=row
            ) from None
    if not isinstance(value, datetime):
        raise FeaturePushError(
            f"expected a timestamp, got {type(value).__name__}", field=column, row=row
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise FeaturePushError(
            "naive timestamp (no time zone)",
            field=column,
            row=row,
            hint="send UTC with an offset, e.g. 2026-01-01T12:00:00+00:00",
        )
    return value.astimezone(UTC)


def _value(spec: FieldDef, value: Any, row: int) -> Any:
    name = spec.name
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if spec.nullable and value is None:
            return None
        what = "NaN" if value is not None else "null"
        raise FeaturePushError(f"{what} is not allowed here", field=name, row=row)
    if spec.dtype == "float64":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FeaturePushError(
                f"expected a number, got {type(value).__name__}", field=name, row=row
            )
        number = float(value)
        if not math.isfinite(number):
            raise FeaturePushError(f"{number} is not finite", field=name, row=row)
        return number
    if spec.dtype == "int64":
        if isinstance(value, bool) or not isinstance(value, int):
            raise FeaturePushError(
                f"expected an integer, got {type(value).__name__}", field=name, row=row
            )
        if not INT64[0] <= value <= INT64[1]:
            raise FeaturePushError("outside the int64 range", field=name, row=row)
        return value
    if spec.dtype == "bool":
        if not isinstance(value, bool):
            raise FeaturePushError(
                f"expected true/false, got {type(value).__name__}", field=name, row=row
            )
        return value
    if not isinstance(value, str):
        raise FeaturePushError(
            f"expected a string, got {type(value).__name__}", field=name, row=row
        )
    return value


def validate_push(
    push_source: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    max_rows: int,
    max_future_s: float,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The rows, checked and normalised (timestamps as aware UTC datetimes, numbers as floats
    and ints); raises :class:`FeaturePushError` on the first problem."""
    source = _source(push_source)
    if isinstance(rows, Mapping | str | bytes):
        raise FeaturePushError("expected a list of rows", field="rows")
    if not rows:
        raise FeaturePushError("the batch is empty", field="rows")
    if len(rows) > max_rows:
        raise FeaturePushError(
            f"{len(rows)} rows, at most {max_rows} per push",
            field="rows",
            hint="split the batch (EMILY_FEATURES__PUSH_MAX_ROWS)",
        )
    key = source.entity.join_key
    features = source.fields()
    required = {key, source.timestamp, *features}
    allowed = {*required, source.created}
    latest = (now or datetime.now(UTC)) + timedelta(seconds=max_future_s)
    seen: dict[tuple[str, datetime], int] = {}
    checked: list[dict[str, Any]] = []
    for row, item in enumerate(rows, start=1):
        if not isinstance(item, Mapping):
            raise FeaturePushError(
                f"expected an object, got {type(item).__name__}", field="rows", row=row
            )
        extra = sorted(str(c) for c in item if c not in allowed)
        if extra:
            raise FeaturePushError(
                f"unknown column {extra[0]!r} (not a field of {source.name})",
                field=extra[0],
                row=row,
            )
        missing = sorted(c for c in required if c not in item)
        if missing:
            raise FeaturePushError("missing column", field=missing[0], row=row)
        entity = item[key]
        if not isinstance(entity, str):
            raise FeaturePushError(
                f"entity key must be a string, got {type(entity).__name__}", field=key, row=row
            )
        if not source.entity.pattern.fullmatch(entity):
            raise FeaturePushError(
                f"not a valid entity key ({source.entity.pattern_text})", field=key, row=row
            )
        at = _timestamp(item[source.timestamp], source.timestamp, row)
        if at > latest:
            raise FeaturePushError(
                f"{at.isoformat()} is in the future (more than {max_future_s:g} s ahead)",
                field=source.timestamp,
                row=row,
                hint="a future event would hide every later update of this entity",
            )
        out: dict[str, Any] = {key: entity, source.timestamp: at}
        if source.created in item:
            out[source.created] = _timestamp(item[source.created], source.created, row)
        for name, spec in features.items():
            out[name] = _value(spec, item[name], row)
        earlier = seen.setdefault((entity, at), row)
        if earlier != row:
            raise FeaturePushError(
                f"same entity and event timestamp as row {earlier}", field=key, row=row
            )
        checked.append(out)
    return checked


def to_columns(source: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Checked rows as the column lists Feast's ``/push`` takes (timestamps ISO-8601 UTC)."""
    spec = _source(source)
    names = list(rows[0].keys())
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for item in rows:
        for name in names:
            value = item[name]
            columns[name].append(value.isoformat() if isinstance(value, datetime) else value)
    if spec.created not in columns:
        stamp = datetime.now(UTC).isoformat()
        columns[spec.created] = [stamp] * len(rows)
    return columns
