"""README's quick start, run verbatim against a fresh state directory.

The commands are extracted from README.md (the fenced block after the ``quickstart`` marker),
so documentation and behaviour cannot drift apart: editing the README changes this test, and
a command that stops working fails it. Each line runs through ``bash`` exactly as written, in
``python/`` (the block's ``cd python``), with only ``EMILY_STATE_DIR`` pointing at a new
directory so the suite's own stack is not touched.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
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


@pytest.mark.timeout(900)
def test_readme_quickstart_works_verbatim(tmp_path: Path) -> None:
    commands = quickstart_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMILY_", "MLFLOW_"))}
    env["EMILY_STATE_DIR"] = str(tmp_path / "state")
    outputs: dict[str, str] = {}
    try:
        for command in commands:
            started = time.monotonic()
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=ROOT / "python",
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            print(f"{command}: {time.monotonic() - started:.1f} s")
            assert done.returncode == 0, f"`{command}` failed:\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr, f"`{command}`:\n{done.stderr}"
            outputs[command.split("#")[0].strip()] = done.stdout
    finally:
        subprocess.run(
            ["uv", "run", "emily", "down"], cwd=ROOT / "python", env=env, capture_output=True
        )
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
