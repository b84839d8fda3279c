"""The demo's second act on the real stack: a first model trained on dictionary words only
(DVC pipeline in a workspace of its own), the agent loop living held-out words and then chat
tokens with their human ratings, monitoring and watch passes on the stored turns, retraining on
the labelled chat, an A/B period decided by the always-valid test, the new champion, the
report's section; and a second run that starts over from the same first model, with DVC's run
cache restoring both trainings."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from emily.config import Settings
from emily.demo.drift_act import ActResult
from emily.demo.drift_report import DRIFT_CHARTS, error_rows, write_act
from emily.demo.runner import DemoOptions, second_act
from emily.mlops import registry
from emily.mlops.tracking import connect
from emily.stack.manager import Stack
from tests.fixtures.mlflow import MlflowServer

pytestmark = pytest.mark.timeout(1500)


def _act(settings: Settings, report: Path) -> tuple[ActResult, str]:
    console = Console(file=io.StringIO(), width=100)
    problems: list[str] = []
    act = second_act(settings, DemoOptions(report_dir=report), console, problems)
    assert act is not None, problems
    return act, console.file.getvalue()  # type: ignore[attr-defined]


def _mean_error(act: ActResult, phase: str, model: str) -> float:
    errors = [
        t.error
        for t in act.turns
        if act.phase_of(t) == phase and t.appraised_by == model and t.error is not None
    ]
    assert len(errors) >= 20, (phase, model, len(errors))
    return float(np.mean(errors))


def test_the_second_act_detects_the_shift_retrains_and_promotes(
    stack: Stack, settings: Settings, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    act, output = _act(settings, tmp_path / "report")
    first, name = act.first_version, act.model
    decisions = [p.decision.action for p in act.decisions if p.decision is not None]

    # The monitor sees the shift after the onset; the watch waits for labelled chat, retrains,
    # puts the challenger under an A/B test and promotes it on the test's decision.
    assert act.detected_turn is not None and act.detected_turn > act.onset_turn
    assert "drift-without-data" in decisions
    assert decisions.index("ab-started") < decisions.index("ab-promoted"), decisions
    assert act.new_champion is not None and act.new_champion != first
    assert act.promoted_turn is not None and act.onset_to_promoted_s is not None
    champion = registry.by_alias(connect(settings), name, registry.CHAMPION)
    assert champion is not None and champion.version == act.new_champion

    # The chat the new champion meets after the promotion is text no model was trained on;
    # it errs less on it than the first model did on the chat before.
    before = _mean_error(act, "chat", f"{name}/{first}")
    after = _mean_error(act, "after", f"{name}/{act.new_champion}")
    assert after < before
    # In the A/B period both arms were served, each by its version.
    arms = {(t.context.get("ab_arm"), t.appraised_by) for t in act.turns if act.phase_of(t) == "ab"}
    assert arms == {("champion", f"{name}/{first}"), ("challenger", f"{name}/{act.new_champion}")}
    ab = act.ab_evidence
    assert ab is not None and ab["decision"] == "promote" and ab["ci"]["high"] < 0

    # Lineage of the new champion: data hashes → run → version → alias.
    assert act.lineage is not None
    assert act.lineage["version"] == act.new_champion and "champion" in act.lineage["aliases"]
    assert {"lexicon", "embeddings"} <= set(act.lineage["data"]["md5"])
    assert act.lineage["run"]["id"]

    # The report's section: both charts, the tables, the figures as JSON.
    html = write_act(act, tmp_path / "report")
    for png in DRIFT_CHARTS.values():
        assert f"src='{png}'" in html
        assert (tmp_path / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Lineage of the new champion" in html and "ab-promoted" in html
    figures = json.loads((tmp_path / "report" / "drift-act.json").read_text(encoding="utf-8"))
    assert figures["new_champion"] == act.new_champion
    assert figures["detected_turn"] == act.detected_turn
    assert any(row[0] == "after" for row in error_rows(act))
    assert f"new champion {name} v{act.new_champion}" in output

    # Again: the act starts over from the same first model (its earlier turns forgotten, its
    # data removed) and DVC's run cache restores both trainings, so the versions are the same.
    again, _ = _act(settings, tmp_path / "again")
    assert again.first_version == first
    assert again.new_champion == act.new_champion
    assert len(again.turns) == len(act.turns)
