from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from emily.cli import app
from emily.config import Settings
from emily.demo.report import CHARTS
from emily.memory.store import MemoryStore
from emily.stack.manager import Stack
from tests.fixtures.mlflow import MlflowServer


def _demo(settings: Settings, report: Path, *extra: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner(env=env).invoke(
        app,
        [
            "--state-dir",
            str(settings.state_dir),
            "demo",
            "--corpus-size",
            "200",
            "--report-dir",
            str(report),
            "--no-train",  # training is tests/mlops' (on a copy of the pipeline)
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_demo_end_to_end_writes_report(
    stack: Stack, settings: Settings, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    # (The second act has a test of its own: tests/demo/test_drift_act.py.)
    output = _demo(settings, report, "--stimuli", "6", "--no-drift-act")
    assert "Episodic memory" in output and "6 turns" in output
    # One line per turn, within 80 columns (the console is 80 wide when not a terminal).
    turns = [line for line in output.splitlines() if re.match(r"^ ?\d \d\d:\d\d ", line)]
    assert len(turns) == 6 and max(len(line) for line in turns) <= 80
    assert re.search(r"traces: http://127\.0\.0\.1:\d+/#/experiments/\d+/traces", output)
    page = (report / "index.html").read_text(encoding="utf-8")
    for png in CHARTS.values():
        assert f"src='{png}'" in page
        assert (report / png).stat().st_size > 1000
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "WordNet" in page
    # The freshness panel: the batch view no push feeds was materialized up to the day's end.
    assert "Feature store: freshness" in page
    habituation = page[page.index("stimulus_habituation_v1") :].split("</tr>", 1)[0]
    assert "fresh" in habituation and "stale" not in habituation
    # Without a champion the report says every label is derived, and why.
    assert "Valence labels: anchor (derived)" in page
    assert "no emily-appraisal@champion" in page
    assert "Turns appraised by: words (6)" in page  # EMILY_AGENTS__APPRAISER=words in tests
    # Memory holds the corpus (seeded once) plus the consolidated turns of the day.
    with MemoryStore(settings) as store:
        rows = store.count()
        hits = store.search("fear of danger", k=3, context={"source": "wordnet"})
    assert rows >= 200 and len(hits) == 3

    # Again without the day, MLflow given as an external server: the corpus is cached and not
    # seeded a second time, and the traces link points at the configured server.
    mlflow = stack.record("mlflow")
    assert mlflow is not None and mlflow.url is not None
    output = _demo(
        settings,
        tmp_path / "again",
        "--no-agents",
        env={
            "EMILY_MLFLOW__TRACKING_URI": mlflow.url,
            # an external server's credentials come from settings, like any external service's
            "EMILY_MLFLOW__USERNAME": mlflow_server.auth[0],
            "EMILY_MLFLOW__PASSWORD": mlflow_server.auth[1],
        },
    )
    assert "not seeding again" in output
    assert "mlflow    external (configured)" in output
    assert f"traces: {mlflow.url}/#/experiments/" in output
    with MemoryStore(settings) as store:
        assert store.count() == rows
    assert not (tmp_path / "again" / CHARTS["affect"]).exists()
    assert (tmp_path / "again" / "index.html").is_file()
