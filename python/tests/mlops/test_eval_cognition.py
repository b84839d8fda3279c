"""``emily mlops eval-cognition`` on the real stack: the session's llama-server (SmolLM2), the
prompt registry and ``mlflow.genai.evaluate`` on the real MLflow server. Three stimuli only:
each is a full LLM turn on a shared CPU."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from emily.agents.evaluation import SCORERS, load_stimuli
from emily.cli.app import app
from emily.mlops.tracking import connect
from emily.provision import register_prompt
from tests.fixtures.llm import LlmServer
from tests.fixtures.mlflow import MlflowServer

pytestmark = pytest.mark.timeout(1200)
RUNNER = CliRunner()


def test_the_stimulus_set_is_fixed_and_large_enough() -> None:
    stimuli = load_stimuli()
    assert len(stimuli.items) >= 50
    assert len({item["id"] for item in stimuli.items}) == len(stimuli.items)
    assert load_stimuli().version == stimuli.version


def test_eval_cognition_scores_a_prompt_version_in_mlflow(
    mlflow_server: MlflowServer, llm_server: LlmServer
) -> None:
    settings = mlflow_server.settings
    register_prompt(settings)
    env = {
        # patient deadlines: the CPU is shared; the deadline scorer checks the loop's own figure
        "EMILY_AGENTS__LOOP_DEADLINE_S": "300",
        "EMILY_AGENTS__COGNITION_DEADLINE_S": "280",
        "EMILY_INFERENCE__DEADLINE_S": "300",
    }
    done = RUNNER.invoke(
        app,
        [
            "mlops",
            "eval-cognition",
            "--limit",
            "3",
            "--json",
            "--state-dir",
            str(settings.state_dir),
        ],
        env=env,
    )
    assert done.exit_code == 0, done.output
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["stimuli"] == 3 and result["prompt"].startswith("prompts:/emily-cognition/")
    assert result["stimuli_version"] == load_stimuli().version
    for name in SCORERS:
        assert f"{name}/mean" in result["metrics"]
        assert 0.0 <= result["metrics"][f"{name}/mean"] <= 1.0
    rows = result["rows"]
    assert [r["id"] for r in rows] == [i["id"] for i in load_stimuli().items[:3]]
    # The per-row scores are the scorers' own; their mean is what MLflow recorded.
    for name in SCORERS:
        mean = sum(bool(r[name]) for r in rows) / len(rows)
        assert result["metrics"][f"{name}/mean"] == pytest.approx(mean)
    assert all(r["deadline_met"] for r in rows)
    run = connect(settings).get_run(result["run_id"])
    assert run.data.tags["prompt_uri"] == result["prompt"]
    assert run.data.tags["stimuli_version"] == result["stimuli_version"]


def test_an_unknown_prompt_alias_is_one_clear_line(mlflow_server: MlflowServer) -> None:
    settings = mlflow_server.settings
    done = RUNNER.invoke(
        app,
        [
            "mlops",
            "eval-cognition",
            "--prompt-alias",
            "nonexistent",
            "--state-dir",
            str(settings.state_dir),
        ],
    )
    assert done.exit_code != 0
    assert "nonexistent" in done.output and "Traceback" not in done.output
