"""One test per kind of bad input: a typed error naming field and row, nothing written."""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from emily.cli import app
from emily.config import Settings
from emily.memory.errors import InvalidEpisodeError
from emily.memory.models import Episode
from emily.memory.store import MemoryStore
from tests.memory.conftest import make_episodes


def _count_tag(store: MemoryStore, tag: str, dim: int) -> int:
    hits = store.search(query_vector=[1.0] + [0.0] * (dim - 1), k=1000, context={"tag": tag})
    return len(hits)


def _bad_batch(settings: Settings, field: str, value: Any) -> tuple[list[dict[str, Any]], str]:
    episodes = make_episodes(np.random.default_rng(1), 5, settings.database.embedding_dim)
    episodes[3][field] = value
    return episodes, episodes[0]["context"]["tag"]


def _deep(levels: int) -> dict[str, Any]:
    """``{"a": {"a": ... {}}}``, built without recursion."""
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("field", "value", "reported_field", "message"),
    [
        ("embedding", [0.1] * 7, "embedding", "expected 384"),
        ("embedding", [math.nan] * 384, "embedding", "NaN"),
        ("embedding", [math.inf] + [0.0] * 383, "embedding", "Inf"),
        ("embedding", [70_000.0] + [0.0] * 383, "embedding", "beyond what halfvec holds"),
        ("embedding", ["0.1"] * 384, "embedding.0", "must be a number"),
        ("affect", [0.0, 1.5, 0.0], "affect.arousal", "less than or equal to 1"),
        ("affect", [0.0, 0.0, -1.01], "affect.dominance", "greater than or equal to -1"),
        ("affect", [math.nan, 0.0, 0.0], "affect.valence", "finite"),
        ("affect", [0.0, 0.0], "affect", "exactly 3"),
        ("affect", [True, False, 0.2], "affect.valence", "must be a number"),
        ("affect", ["0.1", 0.0, 0.0], "affect.valence", "must be a number"),
        ("content", "   \n", "content", "empty"),
        ("content", "x" * 16_385, "content", "limit is 16384"),
        ("content", "half a pair \ud800 here", "content", "lone surrogate"),
        ("content", "a\x00b", "content", "NUL"),
        ("occurred_at", datetime(2026, 1, 1, 12, 0), "occurred_at", "timezone"),
        ("occurred_at", "0001-01-01T00:30:00+01:00", "occurred_at", "representable calendar"),
        ("occurred_at", "9999-12-31T23:30:00-01:00", "occurred_at", "representable calendar"),
        ("context", {"x": math.nan}, "context.x", "NaN"),
        ("context", {"x": math.inf}, "context", "not plain JSON"),
        ("context", {"k": ["ok", "\udc00"]}, "context.k[1]", "lone surrogate"),
        ("context", {"k": "a\x00b"}, "context.k", "NUL"),
        ("context", {"a\x00": 1}, "context", "key that contains a NUL"),
        ("context", {"blob": "x" * 10_000_000}, "context", "the limit is 65536"),
        ("context", ["not", "an", "object"], "context", "valid dictionary"),
    ],
    ids=[
        "dimension",
        "nan-embedding",
        "inf-embedding",
        "embedding-beyond-halfvec",
        "embedding-as-strings",
        "affect-above",
        "affect-below",
        "affect-nan",
        "affect-length",
        "affect-booleans",
        "affect-string",
        "empty-text",
        "oversized-text",
        "content-lone-surrogate",
        "content-nul",
        "naive-timestamp",
        "calendar-start-with-offset",
        "calendar-end-with-offset",
        "context-nan",
        "context-inf",
        "context-lone-surrogate",
        "context-nul",
        "context-nul-key",
        "context-10mb",
        "context-not-object",
    ],
)
def test_bad_episode_rejected_and_nothing_written(
    store: MemoryStore, field: str, value: Any, reported_field: str, message: str
) -> None:
    episodes, tag = _bad_batch(store.settings, field, value)
    before = store.count()
    with pytest.raises(InvalidEpisodeError) as info:
        store.add_many(episodes, batch_row_offset=10)
    assert info.value.row == 13
    assert info.value.field == reported_field
    assert message in str(info.value)
    assert store.count() == before
    assert _count_tag(store, tag, store.settings.database.embedding_dim) == 0


def test_context_nested_100000_deep_is_an_error_not_a_recursion_error(store: MemoryStore) -> None:
    episodes, tag = _bad_batch(store.settings, "context", _deep(100_000))
    before = store.count()
    with pytest.raises(InvalidEpisodeError) as info:
        store.add_many(episodes)
    assert info.value.row == 3
    assert info.value.field is not None and info.value.field.startswith("context.a.a")
    assert "nested deeper than 16 levels" in str(info.value)
    assert store.count() == before
    assert _count_tag(store, tag, store.settings.database.embedding_dim) == 0


def test_episode_objects_are_validated_like_dicts(store: MemoryStore) -> None:
    """The agents hand in ``Episode`` objects: a hostile context in one (too deep for pydantic
    to serialise) is refused the same way, without a serialiser error."""
    episodes, _ = _bad_batch(store.settings, "context", {})
    episode = Episode.model_validate(episodes[0])
    episode.context = _deep(1_000)
    with pytest.raises(InvalidEpisodeError, match="nested deeper"):
        store.add(episode)


def test_context_at_the_depth_limit_is_accepted(store: MemoryStore) -> None:
    episodes, tag = _bad_batch(store.settings, "context", {})
    for episode in episodes:
        episode["context"] = {"tag": tag, "deep": _deep(15)}  # 16 levels with "deep"
    assert len(store.add_many(episodes)) == 5
    assert _count_tag(store, tag, store.settings.database.embedding_dim) == 5


def test_bad_search_arguments(store: MemoryStore) -> None:
    dim = store.settings.database.embedding_dim
    with pytest.raises(InvalidEpisodeError, match="query_vector"):
        store.search(query_vector=[0.1, 0.2])
    with pytest.raises(InvalidEpisodeError, match="NaN"):
        store.search(query_vector=[math.nan] * dim)
    with pytest.raises(InvalidEpisodeError, match="query_text"):
        store.search()
    with pytest.raises(InvalidEpisodeError, match="affect"):
        store.search(mode="affective")
    with pytest.raises(InvalidEpisodeError, match="affect"):
        store.search(mode="affective", affect=[2.0, 0.0, 0.0])
    with pytest.raises(InvalidEpisodeError, match="'k'"):
        store.search(query_vector=[1.0] * dim, k=0)
    with pytest.raises(InvalidEpisodeError, match="ef_search"):
        store.search(query_vector=[1.0] * dim, ef_search=0)
    with pytest.raises(InvalidEpisodeError, match="semantic_weight"):
        store.search(query_vector=[1.0] * dim, affect=[0, 0, 0], mode="hybrid", semantic_weight=2)
    with pytest.raises(InvalidEpisodeError, match="since"):
        store.search(query_vector=[1.0] * dim, since=datetime(2026, 1, 1))
    with pytest.raises(InvalidEpisodeError, match="mode"):
        store.search(query_vector=[1.0] * dim, mode="psychic")  # type: ignore[arg-type]


def _write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"content": "unterminated', "malformed JSON"),
        ("[1, 2, 3]", "JSON object"),
        ('{"content": "x", "occurred_at": "2026-01-01T00:00:00", "affect": [0,0,0]}', "timezone"),
    ],
    ids=["malformed-json", "not-an-object", "naive-timestamp"],
)
def test_malformed_jsonl_names_the_line(
    store: MemoryStore, migrated: Settings, tmp_path: Path, bad_line: str, message: str
) -> None:
    episodes = make_episodes(np.random.default_rng(2), 6, migrated.database.embedding_dim)
    tag = episodes[0]["context"]["tag"]
    lines = [json.dumps(e, default=str) for e in episodes]
    lines.insert(4, "")  # blank lines are allowed and still counted
    lines.insert(5, bad_line)  # line 6
    path = _write_jsonl(tmp_path / f"{uuid.uuid4().hex}.jsonl", lines)
    before = store.count()
    result = CliRunner().invoke(
        app,
        [
            "--state-dir",
            str(migrated.state_dir),
            "memory",
            "ingest",
            str(path),
            "--batch-size",
            "2",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "row 6" in result.output and message in result.output
    assert store.count() == before
    assert _count_tag(store, tag, migrated.database.embedding_dim) == 0


def test_missing_jsonl_file_is_a_typed_error(migrated: Settings, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["--state-dir", str(migrated.state_dir), "memory", "ingest", str(tmp_path / "no")]
    )
    assert result.exit_code == 1
    assert "cannot read" in result.output
