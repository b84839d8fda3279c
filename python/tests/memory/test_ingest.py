"""`emily memory ingest` with hostile files (the probe's cases, one test each), whole-file
validation, idempotent re-runs, and a property test over arbitrary JSON lines: every bad file
is exit code 1, one line naming the row, and no row written."""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from typer.testing import CliRunner

from emily.cli import app
from emily.config import Settings
from emily.locator import Endpoints
from emily.memory.store import MemoryStore
from tests.memory.conftest import NOW, make_episodes

DIM = 384


def _ingest(settings: Settings, path: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["--state-dir", str(settings.state_dir), "memory", "ingest", str(path), *extra]
    )
    return result.exit_code, result.stdout, result.stderr


def _lines(n: int, *, seed: int = 1, **context: Any) -> list[str]:
    episodes = make_episodes(np.random.default_rng(seed), n, DIM, **context)
    return [json.dumps(e, default=str) for e in episodes]


def _write(path: Path, lines: list[str], *, prefix: bytes = b"") -> Path:
    path.write_bytes(prefix + ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))
    return path


def _partitions(endpoints: Endpoints) -> set[str]:
    with psycopg.connect(endpoints.postgres_admin_dsn) as conn:
        return {
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'episodic_memories'::regclass"
            )
        }


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


def _episode(**overrides: Any) -> str:
    """One ingest line (raw JSON text, so a test can put any bytes in it)."""
    fields = {
        "content": '"a line"',
        "occurred_at": json.dumps((NOW - timedelta(days=2)).isoformat()),
        "affect": "[0.1, 0.2, 0.3]",
        "context": "{}",
        **overrides,
    }
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"


DEEP = '{"a": ' * 100_000 + "1" + "}" * 100_000


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        (_episode(occurred_at='"0001-01-01T00:30:00+01:00"'), "occurred_at", "calendar"),
        (_episode(occurred_at='"9999-12-31T23:30:00-01:00"'), "occurred_at", "calendar"),
        (_episode(content='"lone \\ud800 surrogate"'), "content", "lone surrogate"),
        (_episode(context='{"note": "\\udfff"}'), "context.note", "lone surrogate"),
        (_episode(context='{"note": "a\\u0000b"}'), "context.note", "NUL"),
        (_episode(context=DEEP), "line", "nested too deeply"),
        (_episode(embedding="[70000.0" + ", 0.0" * (DIM - 1) + "]"), "embedding", "halfvec"),
        (_episode(affect="[true, false, 0.2]"), "affect.valence", "must be a number"),
        (_episode(embedding=json.dumps(["0.1"] * DIM)), "embedding.0", "must be a number"),
        (_episode(context=json.dumps({"blob": "x" * 10_000_000})), "context", "limit is 65536"),
    ],
    ids=[
        "calendar-start-offset",
        "calendar-end-offset",
        "content-lone-surrogate",
        "context-lone-surrogate",
        "context-nul",
        "context-100000-deep",
        "embedding-beyond-halfvec",
        "affect-lax-booleans",
        "embedding-as-strings",
        "context-10mb",
    ],
)
def test_hostile_line_is_one_line_error_and_nothing_written(
    store: MemoryStore, migrated: Settings, tmp_path: Path, line: str, field: str, message: str
) -> None:
    tag = uuid.uuid4().hex
    lines = [*_lines(3, tag=tag), line, *_lines(2, seed=2, tag=tag)]
    before = store.count()
    code, stdout, stderr = _ingest(migrated, _write(tmp_path / "bad.jsonl", lines))
    assert code == 1
    error = _one_error_line(stderr)
    assert "row 4" in error and f"field '{field}'" in error and message in error, error
    assert stdout == ""  # nothing was committed, so no batch was reported
    assert store.count() == before


@pytest.mark.parametrize("days", [-4_000, 400], ids=["too-old", "too-far-ahead"])
def test_occurred_at_outside_the_window_is_refused_without_a_partition(
    store: MemoryStore, migrated: Settings, endpoints: Endpoints, tmp_path: Path, days: int
) -> None:
    moment = NOW + timedelta(days=days)
    partition = f"episodic_memories_y{moment.year:04d}m{moment.month:02d}"
    assert partition not in _partitions(endpoints)
    line = _episode(occurred_at=json.dumps(moment.isoformat()))
    before = store.count()
    code, _, stderr = _ingest(migrated, _write(tmp_path / "w.jsonl", [*_lines(2), line]))
    assert code == 1
    error = _one_error_line(stderr)
    assert "row 3" in error and "occurred_at" in error and "accepted window" in error
    assert store.count() == before
    assert partition not in _partitions(endpoints)
    # The store refuses it too, whoever calls (the agents API's `at` ends here as well).
    episode = json.loads(line)
    with pytest.raises(Exception, match="accepted window"):
        store.add(episode)
    assert partition not in _partitions(endpoints)


def test_utf8_bom_is_accepted(store: MemoryStore, migrated: Settings, tmp_path: Path) -> None:
    before = store.count()
    path = _write(tmp_path / "bom.jsonl", _lines(3, seed=5), prefix=b"\xef\xbb\xbf")
    code, stdout, stderr = _ingest(migrated, path)
    assert code == 0, stderr
    assert "3 new, 0 already present" in stdout
    assert store.count() == before + 3


def test_bad_line_in_second_batch_writes_nothing(
    store: MemoryStore, migrated: Settings, tmp_path: Path
) -> None:
    """The probe's case: 1,500 good rows, then a bad one in the second batch. The whole file is
    validated before the first write, so not even the first batch is committed."""
    tag = uuid.uuid4().hex
    good = _lines(1_500, tag=tag, start=NOW - timedelta(days=80))  # one per hour
    lines = [*good, _episode(context='{"x": "\\u0000"}')]
    before = store.count()
    code, stdout, stderr = _ingest(migrated, _write(tmp_path / "b2.jsonl", lines))
    assert code == 1
    assert "row 1501" in _one_error_line(stderr)
    assert "committed" not in stdout
    assert store.count() == before


def test_ingest_again_adds_nothing(store: MemoryStore, migrated: Settings, tmp_path: Path) -> None:
    """A file half ingested before (a failure, a kill) is simply ingested again: what is stored
    is reported as already present, the rest is added, nothing twice."""
    lines = _lines(9, seed=7)
    head = _write(tmp_path / "head.jsonl", lines[:4])
    full = _write(tmp_path / "full.jsonl", lines)
    before = store.count()
    code, stdout, _ = _ingest(migrated, head, "--batch-size", "3")
    assert code == 0 and "4 new, 0 already present" in stdout
    code, stdout, _ = _ingest(migrated, full, "--batch-size", "3")
    assert code == 0
    assert re.findall(r"lines (\d+-\d+), (\d+) new, (\d+) already present", stdout) == [
        ("1-3", "0", "3"),
        ("4-6", "2", "1"),
        ("7-9", "3", "0"),
    ]
    assert "ingested 9 episodes in 3 batches: 5 new, 4 already present" in stdout
    assert store.count() == before + 9
    code, stdout, _ = _ingest(migrated, full)
    assert code == 0 and "0 new, 9 already present" in stdout
    assert store.count() == before + 9


def test_duplicate_lines_in_one_file_are_stored_once(
    store: MemoryStore, migrated: Settings, tmp_path: Path
) -> None:
    [line] = _lines(1, seed=8)
    before = store.count()
    code, stdout, _ = _ingest(migrated, _write(tmp_path / "dup.jsonl", [line, line, line]))
    assert code == 0 and "1 new, 2 already present" in stdout
    assert store.count() == before + 1


def test_a_batch_reports_the_ids_of_episodes_already_stored(store: MemoryStore) -> None:
    episodes = make_episodes(np.random.default_rng(9), 3, DIM)
    first = store.add_batch(episodes[:2])
    again = store.add_batch(episodes)
    assert first.new == [True, True]
    assert again.ids[:2] == first.ids and again.new == [False, False, True]
    # The same text at the same moment with another context is another episode.
    other = {**episodes[0], "context": {**episodes[0]["context"], "variant": 1}}
    assert store.add_batch([other]).new == [True]


# -- property: arbitrary JSON lines ------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
REQUIRED = ("content", "occurred_at", "affect")


def _is_episode_shaped(value: Any) -> bool:
    return isinstance(value, dict) and all(key in value for key in REQUIRED)


bad_field_values: dict[str, Any] = {
    "content": st.none() | st.integers() | st.just("") | st.just(" \t") | st.just("a\x00b"),
    "occurred_at": st.none()
    | st.integers()
    | st.text(max_size=12)
    | st.just("2026-01-01T00:00:00")
    | st.just("0001-01-01T00:30:00+01:00")
    | st.just("1900-01-01T00:00:00+00:00"),
    "affect": st.lists(st.floats(-1, 1), max_size=2)
    | st.lists(st.booleans(), min_size=3, max_size=3)
    | st.lists(st.floats(min_value=1.01, max_value=1e9), min_size=3, max_size=3)
    | st.lists(st.text(max_size=3), min_size=3, max_size=3),
    "context": st.lists(json_values, max_size=3) | st.integers() | st.just({"k": "a\x00"}),
    "embedding": st.lists(st.floats(-1, 1), max_size=5) | st.just(["0.1"] * DIM),
}


@st.composite
def bad_lines(draw: st.DrawFn) -> str:
    """A non-blank line no validation may accept."""
    kind = draw(st.sampled_from(["json", "episode", "text"]))
    if kind == "json":
        value = draw(json_values.filter(lambda v: not _is_episode_shaped(v)))
        return json.dumps(value)
    if kind == "text":
        return draw(
            st.text(min_size=1, max_size=40)
            .filter(lambda t: t.strip() and "\n" not in t and "\r" not in t)
            .filter(lambda t: not _is_episode_shaped(_try_json(t)))
        )
    field = draw(st.sampled_from(sorted(bad_field_values)))
    episode = json.loads(_episode())
    episode[field] = draw(bad_field_values[field])
    return json.dumps(episode)


def _try_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    good_before=st.integers(0, 3),
    bad=bad_lines(),
    after=st.lists(st.one_of(bad_lines(), json_values.map(json.dumps)), max_size=3),
)
def test_arbitrary_bad_lines_are_one_line_errors_and_write_nothing(
    store: MemoryStore, migrated: Settings, good_before: int, bad: str, after: list[str]
) -> None:
    lines = [*_lines(good_before, seed=11), bad, *after]
    before = store.count()
    with tempfile.TemporaryDirectory() as tmp:
        code, stdout, stderr = _ingest(migrated, _write(Path(tmp) / "p.jsonl", lines))
    assert code == 1, (lines, stdout, stderr)
    error = _one_error_line(stderr)
    assert re.search(r"row \d+", error), error
    assert stdout == ""
    assert store.count() == before
