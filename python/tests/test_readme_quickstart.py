"""README's quick start, run verbatim against a fresh state directory.

The commands are extracted from README.md (the fenced block after the ``quickstart`` marker),
so documentation and behaviour cannot drift apart: editing the README changes this test, and
a command that stops working fails it. Each line runs through ``bash`` exactly as written, in
``python/`` (the block's ``cd python``), with only ``EMILY_STATE_DIR`` pointing at a new
directory so the suite's own stack is not touched. The run starts in the background as soon as
the session is collected (see ``QuickstartRun``); the test waits for it and checks the outputs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- quickstart:"


def quickstart_commands(readme: str) -> list[str]:
    """The shell lines of the block after the marker (comments stripped by the shell)."""
    start = readme.index(MARKER)
    block = re.search(r"```sh\n(.*?)```", readme[start:], re.S)
    assert block is not None, "the quickstart marker is not followed by a ```sh block"
    lines = [line.strip() for line in block.group(1).splitlines() if line.strip()]
    assert lines[0] == "cd python", "the block starts in the repository root"
    return lines[1:]


def test_commands_are_extracted_from_readme() -> None:
    commands = quickstart_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert commands[0].startswith("uv run emily up")
    assert commands[-1].startswith("uv run emily down")
    assert all(c.startswith("uv run emily ") for c in commands)
    with pytest.raises(ValueError):
        quickstart_commands("no marker here")


def _verb(command: str) -> str:
    """``uv run emily memory ingest f`` → ``ingest``; ``uv run emily up`` → ``up``."""
    words = command.split()[3:]
    return words[1] if words[0] in {"memory", "infer", "agents", "mlops", "features"} else words[0]


@dataclass
class QuickstartRun:
    """The quick start run in a background thread, started when the session's collection
    finishes (``tests/conftest.py``): it waits on servers starting most of its ~3 minutes, so it
    overlaps the rest of the suite instead of adding to it. Own state dir, own servers."""

    state_dir: Path
    outputs: dict[str, str] = field(default_factory=dict)
    failure: str | None = None
    log: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None
    stopping: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        """At the session's end: no further command, and the servers go down (the thread's
        ``finally``), so an aborted session leaves nothing running."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(660)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="readme-quickstart", daemon=True)
        self.thread.start()

    def wait(self, timeout_s: float) -> None:
        assert self.thread is not None, "the quick start was never started"
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), f"the quick start did not finish: {self.log}"

    def _run(self) -> None:
        commands = quickstart_commands((ROOT / "README.md").read_text(encoding="utf-8"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EMILY_", "MLFLOW_"))}
        env["EMILY_STATE_DIR"] = str(self.state_dir)
        try:
            for command in commands:
                if self.stopping.is_set():
                    self.failure = "the session ended before the quick start finished"
                    return
                started = time.monotonic()
                done = subprocess.run(
                    ["bash", "-c", command],
                    cwd=ROOT / "python",
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                self.log.append(f"{command}: {time.monotonic() - started:.1f} s")
                if done.returncode != 0:
                    self.failure = f"`{command}` failed:\n{done.stdout}\n{done.stderr}"
                    return
                if "Traceback" in done.stderr:
                    self.failure = f"`{command}`:\n{done.stderr}"
                    return
                self.outputs[command.split("#")[0].strip()] = done.stdout
        except Exception as exc:  # reported by the test, never lost in the thread
            self.failure = f"{type(exc).__name__}: {exc}"
        finally:
            subprocess.run(
                ["uv", "run", "emily", "down"], cwd=ROOT / "python", env=env, capture_output=True
            )


RUN: QuickstartRun | None = None


def start_in_background(state_dir: Path) -> None:
    global RUN
    RUN = QuickstartRun(state_dir)
    RUN.start()


@pytest.mark.timeout(1200)
def test_readme_quickstart_works_verbatim() -> None:
    assert RUN is not None, "tests/conftest.py starts the quick start when this test is selected"
    RUN.wait(1100)
    print("\n".join(RUN.log))
    assert RUN.failure is None, RUN.failure
    outputs = RUN.outputs
    by_verb = {_verb(c): out for c, out in outputs.items()}
    status = json.loads(outputs["uv run emily status --json"])
    assert all(s["healthy"] for s in status["services"] if s["started"])
    assert {s["name"] for s in status["services"] if s["healthy"]} >= {"postgres", "redis"}
    assert re.search(r"\b12\b", by_verb["ingest"]), by_verb["ingest"]
    assert "walk by the sea" in by_verb["search"]
    answer, _ = json.JSONDecoder().raw_decode(by_verb["chat"])
    assert len(answer["colours"]) == 3
    policies = re.compile(r"\b(rest|withdraw|approach|explore|reflect)\b")
    turns = [line for line in by_verb["run"].splitlines() if policies.search(line)]
    assert len(turns) == 4, by_verb["run"]  # one row per stimulus of examples/day.jsonl
