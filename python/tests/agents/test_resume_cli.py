from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from emily.agents import world
from emily.agents.loadbench import stored_rows
from emily.agents.loop import Agent
from emily.agents.runner import StimulusFileError, load_stimuli, parse_stimulus, run_stimuli
from emily.cli import app
from emily.config import Settings
from emily.locator import Endpoints
from tests.agents.conftest import closed_port, variant

DAY = [
    "Good morning, the sun is warm.",
    "A friend sends a message.",
    "Smoke and a fire alarm in the kitchen!",
    "It was only burnt toast.",
    "A strange new parcel arrived.",
    "Nobody called all afternoon; lonely.",
]


def write_stimuli(path: Path, n: int) -> Path:
    lines = [json.dumps({"text": f"{DAY[i % len(DAY)]} ({i})"}) for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def checkpoints(dsn: str, thread: str) -> int:
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute(
                "SELECT count(*) FROM emily_agents.checkpoints WHERE thread_id = %s", (thread,)
            ).fetchone()
        except psycopg.errors.UndefinedTable:  # the child has not created its tables yet
            return 0
    return int(row[0]) if row else 0


def test_resume_after_killing_the_process_mid_thread(
    agents_settings: Settings, endpoints: Endpoints, embedder: Any, tmp_path: Path
) -> None:
    n = 40
    stimuli = write_stimuli(tmp_path / "day.jsonl", n)
    thread = "crash-thread"
    env = {
        **os.environ,
        "EMILY_STATE_DIR": str(agents_settings.state_dir),
        "EMILY_AGENTS__COGNITION_ENABLED": "false",
        # A checkpoint per step, so the kill may land inside a turn and resume must finish it.
        "EMILY_AGENTS__DURABILITY": "async",
        "EMILY_LOG_FORMAT": "json",
    }
    command = [sys.executable, "-c", "from emily.cli import main; main()", "agents", "run"]
    process = subprocess.Popen(
        [*command, "--stimuli", str(stimuli), "--thread", thread, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        # Several turns (each writes one checkpoint per step) but far from all of them.
        while checkpoints(endpoints.postgres_admin_dsn, thread) < 30:
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    done_in_child = [
        json.loads(line) for line in (process.stdout.read() if process.stdout else b"").splitlines()
    ]

    async def resume() -> tuple[Any, Any, list[Any]]:
        async with await Agent.open(
            variant(agents_settings, agents={"cognition_enabled": False}), embedder=embedder
        ) as agent:
            before = await agent.thread(thread)
            results = await run_stimuli(agent, thread, load_stimuli(stimuli), resume=True)
            return before, await agent.thread(thread), results

    before, after, results = asyncio.run(resume())
    assert before is not None and 0 < before.turn < n
    assert before.turn >= len(done_in_child)
    assert after is not None and after.turn == n and not after.pending
    # Nothing ran twice and nothing was skipped: one result per turn still missing.
    assert [r.turn for r in results] == list(range(before.turn + 1, n + 1))
    assert [h["turn"] for h in after.history][-3:] == [n - 2, n - 1, n]
    assert after.history[-1]["stimulus"] == f"{DAY[(n - 1) % len(DAY)]} ({n - 1})"
    # Each line became exactly one turn and one episode, the interrupted one included.
    rows = stored_rows(agents_settings, thread)
    assert sorted(r[2] for r in rows if r[1] == thread) == list(range(1, n + 1))


def test_a_crash_between_the_last_writes_and_their_checkpoint_is_resumed(
    agents_settings: Settings, endpoints: Endpoints, embedder: Any, tmp_path: Path
) -> None:
    """The kill above lands where it lands; this is the one spot that used to lose a turn: the
    last node's writes saved, the checkpoint after them not (made here by deleting it). The
    state then reads as finished while the checkpoint is one step behind."""
    stimuli = load_stimuli(write_stimuli(tmp_path / "day.jsonl", 5))
    thread = f"writes-{uuid.uuid4().hex[:6]}"
    settings = variant(agents_settings, agents={"cognition_enabled": False, "durability": "sync"})

    async def run(lines: Any, *, resume: bool) -> tuple[Any, list[Any], Any]:
        async with await Agent.open(settings, embedder=embedder) as agent:
            before = await agent.thread(thread)
            results = await run_stimuli(agent, thread, lines, resume=resume)
            return before, results, await agent.thread(thread)

    asyncio.run(run(stimuli[:3], resume=False))
    with psycopg.connect(endpoints.postgres_admin_dsn, autocommit=True) as conn:
        deleted = conn.execute(
            "DELETE FROM emily_agents.checkpoints WHERE thread_id = %s AND checkpoint_id = "
            "(SELECT max(checkpoint_id) FROM emily_agents.checkpoints WHERE thread_id = %s)",
            (thread, thread),
        ).rowcount
    assert deleted == 1
    before, results, after = asyncio.run(run(stimuli, resume=True))
    assert before is not None and before.pending  # open, though its values read turn 3
    # Turn 3 finished from its saved writes (its nodes not run again), then lines 4 and 5.
    assert [r.turn for r in results] == [3, 4, 5]
    assert after is not None and after.turn == 5 and not after.pending
    assert [h["stimulus"] for h in after.history] == [s.text for s in stimuli]
    assert sorted(r[2] for r in stored_rows(agents_settings, thread)) == [1, 2, 3, 4, 5]


def run_cli(state_dir: Path, stimuli: Path, *args: str) -> list[dict[str, Any]]:
    """``emily agents run --json``: the turns it printed."""
    result = CliRunner().invoke(
        app,
        [
            "--state-dir",
            str(state_dir),
            "agents",
            "run",
            "--stimuli",
            str(stimuli),
            "--json",
            "--no-cognition",
            *args,
        ],
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_cli_run_json_resume_skips_completed_lines(
    agents_settings: Settings, tmp_path: Path
) -> None:
    state = agents_settings.state_dir
    thread = f"cli-{uuid.uuid4().hex[:6]}"
    two = write_stimuli(tmp_path / "two.jsonl", 2)
    turns = run_cli(state, two, "--thread", thread)
    assert [(t["turn"], t["thread_id"]) for t in turns] == [(1, thread), (2, thread)]
    assert all(t["episode_id"] is not None for t in turns)
    # Both lines are done: --resume runs nothing and the thread stays at turn 2.
    assert run_cli(state, two, "--thread", thread, "--resume") == []
    # A longer file: --resume runs only the lines after the completed ones.
    five = write_stimuli(tmp_path / "five.jsonl", 5)
    resumed = run_cli(state, five, "--thread", thread, "--resume")
    assert [t["turn"] for t in resumed] == [3, 4, 5]
    rows = stored_rows(agents_settings, thread)
    assert sorted(r[2] for r in rows) == [1, 2, 3, 4, 5]  # one episode per turn, none twice
    # Without --resume the same file is run again from its first line, as new turns.
    again = run_cli(state, two, "--thread", thread)
    assert [t["turn"] for t in again] == [6, 7]


def test_cli_run_table(agents_settings: Settings, tmp_path: Path) -> None:
    stimuli = write_stimuli(tmp_path / "three.jsonl", 3)
    result = CliRunner().invoke(
        app,
        [
            "--state-dir",
            str(agents_settings.state_dir),
            "agents",
            "run",
            "--stimuli",
            str(stimuli),
            "--no-cognition",
        ],
    )
    assert result.exit_code == 0, result.output
    cells = [
        [c.strip() for c in line.split("│")[1:-1]]
        for line in result.stdout.splitlines()
        if line.startswith("│")
    ]
    rows = [c for c in cells if c and c[0].isdigit()]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert all(r[1] in world.POLICIES and r[2] in {"instinct", "affect"} for r in rows)


def test_cli_refuses_a_timestamp_outside_the_window(
    agents_settings: Settings, tmp_path: Path
) -> None:
    bad = tmp_path / "old.jsonl"
    bad.write_text(
        '{"text": "fine"}\n{"text": "old", "at": "1990-01-01T00:00:00+00:00"}\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app, ["--state-dir", str(agents_settings.state_dir), "agents", "run", "--stimuli", str(bad)]
    )
    assert result.exit_code == 1
    assert "row 2" in result.stderr and "field 'at'" in result.stderr
    assert "before the accepted window" in result.stderr


def test_cli_names_the_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n\n{"text": "x", "threat": 7}\n', encoding="utf-8")
    result = CliRunner().invoke(
        app, ["--state-dir", str(tmp_path), "agents", "run", "--stimuli", str(bad)]
    )
    assert result.exit_code == 1
    assert "row 3" in result.stderr and "threat" in result.stderr


def test_stimulus_parsing_errors(tmp_path: Path) -> None:
    assert parse_stimulus("just text", 1).text == "just text"
    with pytest.raises(StimulusFileError, match="row 4, field 'text'"):
        parse_stimulus({"source": "x"}, 4)
    with pytest.raises(StimulusFileError, match="Extra inputs"):
        parse_stimulus({"text": "a", "mood": 1}, 5)
    with pytest.raises(StimulusFileError, match=r"row 6, field 'text'.*NUL"):
        parse_stimulus({"text": "a\x00"}, 6)
    with pytest.raises(StimulusFileError, match=r"row 7, field 'at'.*calendar"):
        parse_stimulus({"text": "a", "at": "0001-01-01T00:30:00+01:00"}, 7)
    with pytest.raises(StimulusFileError, match="cannot read"):
        load_stimuli(tmp_path / "missing.jsonl")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('\ufeff{"text": "a BOM is fine"}\n{nope\n', encoding="utf-8")
    with pytest.raises(StimulusFileError, match=r"row 2.*malformed JSON"):
        load_stimuli(broken)
    broken.write_text('\ufeff{"text": "a BOM is fine"}\n', encoding="utf-8")
    assert [s.text for s in load_stimuli(broken)] == ["a BOM is fine"]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(StimulusFileError, match="no stimuli"):
        load_stimuli(empty)


def test_cli_bench_with_the_llm_down(
    agents_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bench's bookkeeping on real services; the LLM is unreachable so each turn is fast
    (and degraded), which the report must say."""
    backends = [
        {"name": "down", "kind": "llama-cpp", "base_url": f"http://127.0.0.1:{closed_port()}/v1"}
    ]
    monkeypatch.setenv("EMILY_INFERENCE__BACKENDS", json.dumps(backends))
    monkeypatch.setenv("EMILY_INFERENCE__RETRY__ATTEMPTS", "1")
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app,
        [
            "--state-dir",
            str(agents_settings.state_dir),
            "agents",
            "bench",
            "--stimuli",
            "2",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["turns"] == 4
    assert report["degraded"] == 4 and "cognition" in report["degraded_reasons"][0]
    assert report["tracing"]["on"]["loop_ms"]["n"] == 2
    assert report["loop_ms"]["p95"] >= report["loop_ms"]["p50"] > 0
    assert set(report["met"]) == {"loop_p95", "overhead_excl_llm_p95", "tracing"}


def test_cli_bench_refuses_without_cognition(
    agents_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMILY_AGENTS__COGNITION_ENABLED", "false")
    result = CliRunner().invoke(
        app, ["--state-dir", str(agents_settings.state_dir), "agents", "bench"]
    )
    assert result.exit_code == 1
    assert "COGNITION_ENABLED" in result.stderr


def test_cli_bench_load_checks_answers_against_stored_rows(
    agents_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The --load mode on the real served API (uvicorn on a loopback port): every answer is
    accounted for, and what must be zero is zero."""
    monkeypatch.setenv("EMILY_AGENTS__COGNITION_ENABLED", "false")
    monkeypatch.setenv("EMILY_AGENTS__MAX_TURNS_IN_FLIGHT", "2")
    monkeypatch.setenv("EMILY_AGENTS__MAX_TURNS_WAITING", "1")
    monkeypatch.setenv("EMILY_AGENTS__THREAD_QUEUE", "1")
    out = tmp_path / "load.json"
    result = CliRunner().invoke(
        app,
        [
            "--state-dir",
            str(agents_settings.state_dir),
            "agents",
            "bench",
            "--load",
            "8",
            "--threads",
            "2",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    statuses = report["statuses"]
    assert sum(statuses.values()) == 8 and set(statuses) <= {"200", "409", "429"}
    assert report["limits"]["max_turns_in_flight"] == 2
    assert report["rows"] == statuses.get("200", 0) >= 1
    assert report["acknowledged_without_row"] == 0
    assert report["rows_behind_failed_answers"] == 0
    assert report["turns_gapless_per_thread"] is True
    assert report["refusals_with_retry_after"] == 8 - statuses.get("200", 0)
    assert report["admitted_loop_ms"]["n"] == statuses.get("200", 0)
