"""kill -9 of the PostgreSQL postmaster in the middle of `emily memory ingest`: no acknowledged
batch is lost and no partial batch is left."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from emily.memory.migrations import migrate
from emily.memory.store import MemoryStore
from emily.stack.manager import Stack
from tests.conftest import make_settings

BATCH = 50
LINES = 20_000
DIM = 8


def _write_corpus(path: Path) -> None:
    rng = np.random.default_rng(99)
    vectors = rng.standard_normal((LINES, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    affects = rng.uniform(-1, 1, (LINES, 3))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(LINES):
            line = {
                "content": f"crash test line {i + 1}",
                "occurred_at": (start + timedelta(minutes=i)).isoformat(),
                "affect": affects[i].round(4).tolist(),
                "context": {"line": i + 1},
                "embedding": vectors[i].round(6).tolist(),
            }
            handle.write(json.dumps(line) + "\n")


def test_kill_postmaster_during_ingest(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "state", database={"embedding_dim": DIM})
    stack = Stack(settings)
    stack.up(["postgres"])
    try:
        migrate(settings)
        corpus = tmp_path / "corpus.jsonl"
        _write_corpus(corpus)
        emily = str(Path(sys.executable).parent / "emily")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "EMILY_DATABASE__EMBEDDING_DIM": str(DIM)}
        args = [emily, "--state-dir", str(settings.state_dir), "--log-format", "json", "memory"]
        proc = subprocess.Popen(
            [*args, "ingest", str(corpus), "--batch-size", str(BATCH)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        committed_lines = []
        for line in proc.stdout:
            if line.startswith("committed batch"):
                committed_lines.append(line)
            if len(committed_lines) >= 5:
                break
        record = stack.record("postgres")
        assert record is not None and record.pid is not None
        os.kill(record.pid, signal.SIGKILL)
        rest, stderr = proc.communicate(timeout=120)
        committed_lines += [line for line in rest.splitlines() if line.startswith("committed")]
        assert proc.returncode == 1, stderr
        assert "error" in stderr and "nothing of this transaction was written" in stderr
        batches = [int(line.split()[2].rstrip(":")) for line in committed_lines]
        assert batches == list(range(1, len(batches) + 1))
        assert len(batches) * BATCH < LINES  # the kill really happened mid-ingest
        # The error says exactly which lines are durable: those of the reported batches.
        reported = re.search(r"lines 1-(\d+) are committed", stderr)
        assert reported is not None and int(reported.group(1)) == len(batches) * BATCH

        for _ in range(30):  # backends notice the postmaster's death and exit
            try:
                stack.up(["postgres"])
                break
            except Exception:
                time.sleep(1)
        with MemoryStore(settings) as store:
            rows = store.count()
            kept = store.search(mode="affective", affect=[0, 0, 0], k=1000)
        assert rows % BATCH == 0
        assert rows >= len(batches) * BATCH
        # Batches are written in file order: the rows present are exactly lines 1..rows.
        assert all(r.context["line"] <= rows for r in kept)

        # The fix for a failed ingest is to run it again: what was stored is skipped. (The
        # file's head stands for the whole file: re-ingesting all 20,000 lines would cost a
        # minute here without showing more.)
        head = tmp_path / "head.jsonl"
        with corpus.open(encoding="utf-8") as source:
            head.write_text("".join(next(source) for _ in range(rows + 200)), encoding="utf-8")
        again = subprocess.run(
            [*args, "ingest", str(head), "--batch-size", "500"],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert again.returncode == 0, again.stderr
        assert f"200 new, {rows} already present" in again.stdout
        with MemoryStore(settings) as store:
            assert store.count() == rows + 200
    finally:
        stack.down()
