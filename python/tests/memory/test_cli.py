from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from emily.cli import app
from emily.config import Settings
from emily.locator import Endpoints
from emily.memory.store import MemoryStore
from tests.memory.conftest import cli_env, fresh_database, make_episodes


def _run(settings: Settings, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--state-dir", str(settings.state_dir), "memory", *args])
    return result.exit_code, result.output


def test_migrate_command(migrated: Settings) -> None:
    code, out = _run(migrated, "migrate")
    assert code == 0 and "schema up to date" in out


def test_add_and_search_by_text_with_the_real_embedder(migrated: Settings) -> None:
    tag = uuid.uuid4().hex
    texts = {
        "Walked along the beach at sunset with my sister, laughing": [0.8, 0.3, 0.4],
        "The quarterly tax forms were due and the printer jammed": [-0.5, 0.6, -0.3],
    }
    for text, (v, a, d) in texts.items():
        code, out = _run(
            migrated,
            "add",
            text,
            f"--valence={v}",
            f"--arousal={a}",
            f"--dominance={d}",
            "--at=2026-10-01T12:00:00+02:00",
            "--context",
            json.dumps({"tag": tag}),
        )
        assert code == 0, out
        assert "added episode" in out
    code, out = _run(
        migrated,
        "search",
        "a seaside evening walk",
        "--context",
        json.dumps({"tag": tag}),
        "--json",
    )
    assert code == 0, out
    results = json.loads(out)
    assert [r["content"] for r in results] == list(texts)
    assert results[0]["similarity"] > results[1]["similarity"]
    code, out = _run(
        migrated,
        "search",
        "paperwork stress",
        "--mode=hybrid",
        "--affect=-0.5,0.5,0",
        "--context",
        json.dumps({"tag": tag}),
    )
    assert code == 0 and "hybrid search" in out and "quarterly" in out


def test_ingest_stats_search_maintain(
    store: MemoryStore, migrated: Settings, tmp_path: Path
) -> None:
    episodes = make_episodes(np.random.default_rng(41), 7, 384)
    tag = episodes[0]["context"]["tag"]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(e, default=str) for e in episodes) + "\n")
    before = store.count()
    code, out = _run(migrated, "ingest", str(path), "--batch-size", "3")
    assert code == 0, out
    assert out.count("committed batch") == 3 and "ingested 7 episodes in 3 batches" in out
    assert store.count() == before + 7

    code, out = _run(
        migrated,
        "search",
        "--mode=affective",
        "--affect=0,0,0",
        "--k=7",
        "--context",
        json.dumps({"tag": tag}),
        "--since=2000-01-01T00:00:00+00:00",
        "--until=2100-01-01T00:00:00Z",
        "--min-valence=-1",
        "--max-valence=1",
        "--min-arousal=-1",
        "--ef-search=50",
        "--json",
    )
    assert code == 0, out
    found = json.loads(out)
    assert sorted(r["context"]["i"] for r in found) == list(range(7))
    code, out = _run(migrated, "search", "--mode=affective", "--affect=0,0,0", "--k=2")
    assert code == 0 and "affective search" in out

    code, out = _run(migrated, "stats", "--json")
    payload = json.loads(out)
    assert isinstance(payload["rows"], int) and payload["rows"] == store.count()
    assert payload["partitions"] and {"name", "range", "rows"} <= set(payload["partitions"][0])
    code, out = _run(migrated, "stats")
    assert code == 0 and "rows" in out and "bloat" in out

    code, out = _run(migrated, "maintain", "--reindex", "--retention-months", "600")
    assert code == 0, out
    assert "vacuum analyze done" in out and "reindexed" in out


def test_backup_and_restore_commands(
    migrated: Settings, endpoints: Endpoints, tmp_path: Path
) -> None:
    dump = tmp_path / "b.dump"
    code, out = _run(migrated, "backup", str(dump))
    assert code == 0 and dump.exists(), out
    scratch = f"cli_{uuid.uuid4().hex[:8]}"
    code, out = _run(migrated, "restore", str(dump), "--into", scratch)
    assert code == 0 and scratch in out, out
    with psycopg.connect(endpoints.postgres_admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "x", "--valence=0", "--arousal=0", "--dominance=0", "--at=yesterday"], "ISO"),
        (["add", "x", "--valence=0", "--arousal=0", "--dominance=0", "--at=2026-01-01"], "offset"),
        (["add", "x", "--valence=0", "--arousal=0", "--dominance=0", "--context={"], "context"),
        (["add", "x", "--valence=0", "--arousal=0", "--dominance=0", "--context=[1]"], "object"),
        (["add", "x", "--valence=3", "--arousal=0", "--dominance=0"], "affect.valence"),
        (["search", "q", "--mode=psychic"], "mode"),
        (["search", "--mode=affective", "--affect=a,b,c"], "affect"),
        (["restore", "/nonexistent/dump"], "does not exist"),
    ],
)
def test_cli_errors_are_one_line_and_exit_1(
    migrated: Settings, args: list[str], message: str
) -> None:
    code, out = _run(migrated, *args)
    assert code == 1
    assert "error:" in out and message in out


@pytest.mark.parametrize(
    "args",
    [
        ["stats"],
        ["stats", "--json"],
        ["maintain"],
        ["search", "--mode=affective", "--affect=0,0,0"],
        ["add", "x", "--valence=0", "--arousal=0", "--dominance=0"],
        ["ingest", "{file}"],
    ],
    ids=["stats", "stats-json", "maintain", "search", "add", "ingest"],
)
def test_commands_on_a_database_without_schema_say_so_in_one_line(
    migrated: Settings, endpoints: Endpoints, tmp_path: Path, args: list[str]
) -> None:
    valid = tmp_path / "one.jsonl"
    valid.write_text(json.dumps(make_episodes(np.random.default_rng(1), 1, 384)[0], default=str))
    with fresh_database(migrated, endpoints) as empty:
        result = CliRunner().invoke(
            app,
            [
                "--state-dir",
                str(empty.state_dir),
                "memory",
                *[a.replace("{file}", str(valid)) for a in args],
            ],
            env=cli_env(empty),
        )
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: the episodic memory schema does not exist "
        "(run `emily memory migrate` (or `emily up`, which migrates))"
    ], result.output
