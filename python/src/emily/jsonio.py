"""Reading JSON-lines files and vetting JSON values that come from outside.

One reader for every ``.jsonl`` input (episodes to ingest, stimuli, the demo corpus): errors
name the line (1-based), a UTF-8 byte-order mark is accepted, blank lines are skipped, and a
value nested deeper than the limit is an error rather than a ``RecursionError``.

``problem_in`` finds what PostgreSQL's ``jsonb``/``text`` and our renderers would choke on
later (NUL characters, lone surrogates, excessive depth), so callers can reject a row with its
field named before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emily.errors import EmilyError

MAX_DEPTH = 32


def text_problem(value: str) -> str | None:
    """Why PostgreSQL would refuse this string, or ``None``."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode)"
    return None


def problem_in(value: Any, *, max_depth: int = MAX_DEPTH, path: str = "") -> tuple[str, str] | None:
    """The first ``(path, reason)`` that makes ``value`` unfit to store, or ``None``.

    Iterative, so a hostile depth cannot exhaust the stack while we look."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > max_depth:
            return where, f"is nested deeper than {max_depth} levels"
        if isinstance(item, str):
            reason = text_problem(item)
            if reason:
                return where, reason
        elif isinstance(item, dict):
            for key, child in item.items():
                reason = text_problem(str(key))
                if reason:
                    return where, f"has a key that {reason}"
                stack.append((child, f"{where}.{key}" if where else str(key), depth + 1))
        elif isinstance(item, list):
            for index, child in enumerate(item):
                stack.append((child, f"{where}[{index}]", depth + 1))
        elif isinstance(item, float) and item != item:  # NaN
            return where, "is NaN"
    return None


def loads_bounded(text: str) -> Any:
    """``json.loads`` that turns pathological nesting into a ``ValueError``."""
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def read_json_lines(
    path: Path, error: type[EmilyError], *, field: str = "line"
) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, parsed value)`` for each non-blank line of ``path``; any problem
    is an ``error`` naming the line."""
    try:
        handle = path.open(encoding="utf-8-sig", errors="strict")
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror}", field="file") from exc
    with handle:
        lineno = 0
        try:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield lineno, loads_bounded(line)
                except json.JSONDecodeError as exc:
                    raise error(f"malformed JSON: {exc.msg}", field=field, row=lineno) from exc
                except ValueError as exc:
                    raise error(str(exc), field=field, row=lineno) from exc
        except UnicodeDecodeError as exc:
            raise error(f"{path} is not UTF-8 text", field="file", row=lineno + 1) from exc
