"""One stored row can never break search output, and hostile search filters are one-line
errors: rows deeper than any renderer takes (written with plain SQL, as a row stored before
the cap would be) still print with ``--json``; NUL, 5,000-deep filters and Rich markup in user
text never end in a traceback."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from emily.cli import app
from emily.config import Settings
from emily.locator import Endpoints
from emily.memory.rendering import CLIPPED, MAX_RENDER_DEPTH, UNLOADABLE, clip_depth
from emily.memory.store import MemoryStore
from tests.memory.conftest import NOW


def _memory(settings: Settings, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--state-dir", str(settings.state_dir), "memory", *args])
    return result.exit_code, result.stdout, result.stderr


def _nested(levels: int) -> str:
    return '{"a": ' * levels + '"bottom"' + "}" * levels


def _insert_raw(endpoints: Endpoints, tag: str, deep_json: str) -> None:
    """A row no validation saw: plain SQL as the owner."""
    moment = NOW - timedelta(days=1)
    with psycopg.connect(endpoints.postgres_admin_dsn) as conn:
        conn.execute("SELECT emily_ensure_partition(%s::date)", (moment.date(),))
        conn.execute(
            "INSERT INTO episodic_memories (occurred_at, content, affect, context)"
            " VALUES (%s, 'deep row', '[0.5,0.5,0.5]',"
            " jsonb_build_object('tag', %s::text, 'deep', %s::jsonb))",
            (moment, tag, deep_json),
        )


def _depth(value: object) -> int:
    depth = 0
    while isinstance(value, dict) and "a" in value:
        value, depth = value["a"], depth + 1
    return depth


@pytest.mark.parametrize("levels", [300, 3_000], ids=["past-pydantic-limit", "past-json-loads"])
def test_a_stored_row_too_deep_to_render_still_prints_as_json(
    store: MemoryStore, migrated: Settings, endpoints: Endpoints, levels: int
) -> None:
    tag = uuid.uuid4().hex
    _insert_raw(endpoints, tag, _nested(levels))
    code, stdout, stderr = _memory(
        migrated,
        "search",
        "--mode=affective",
        "--affect=0.5,0.5,0.5",
        "--context",
        json.dumps({"tag": tag}),
        "--json",
    )
    assert code == 0, stderr
    [row] = json.loads(stdout)
    assert row["content"] == "deep row"
    if levels < 1000:
        assert row["context"]["tag"] == tag
        # Containers down to the render limit are kept, a marker stands where the rest was.
        assert _depth(row["context"]["deep"]) == MAX_RENDER_DEPTH
        assert CLIPPED in json.dumps(row["context"])
    else:  # json.loads itself cannot load it: the row is shown with a marker context
        assert row["context"] == UNLOADABLE
    code, stdout, _ = _memory(
        migrated, "search", "--mode=affective", "--affect=0.5,0.5,0.5", "--context", "{}"
    )
    assert code == 0 and "affective search" in stdout


def test_clip_depth_keeps_what_is_shallow_enough() -> None:
    shallow = {"a": [1, {"b": [2, 3]}], "c": "x"}
    assert clip_depth(shallow) == shallow
    assert clip_depth([{"a": {"b": 1}}], max_depth=1) == [{"a": CLIPPED}]
    assert clip_depth("plain") == "plain"


@pytest.mark.parametrize(
    ("context", "field", "message"),
    [
        ('{"a": "x\\u0000y"}', "context.a", "NUL"),
        ('{"a": "\\udc00"}', "context.a", "lone surrogate"),
        (_nested(5_000), "context", "nested too deeply"),
        (_nested(40), "context.a.a", "nested deeper than 16 levels"),
        ('{"[/]": "\\u0000"}', "context.[/]", "NUL"),
    ],
    ids=["nul", "surrogate", "5000-deep", "40-deep", "markup-in-key"],
)
def test_hostile_search_filters_are_one_line_errors(
    migrated: Settings, context: str, field: str, message: str
) -> None:
    code, stdout, stderr = _memory(
        migrated, "search", "--mode=affective", "--affect=0,0,0", "--context", context
    )
    assert code == 1 and stdout == ""
    [line] = [line for line in stderr.splitlines() if line.strip()]
    assert line.startswith(f"error: field '{field}") and message in line, line


def test_markup_in_user_text_is_printed_literally(migrated: Settings, tmp_path: Path) -> None:
    code, _, stderr = _memory(migrated, "search", "q", "--mode=[/][bold]x")
    assert code == 1
    assert stderr.strip() == "error: field 'mode': unknown mode '[/][bold]x'"
    target = tmp_path / "odd [/] name [red].dump"
    code, stdout, stderr = _memory(migrated, "backup", str(target))
    assert code == 0, stderr
    assert f"backup written to {target}" in stdout.replace("\n", "")
