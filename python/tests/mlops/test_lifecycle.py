"""The model lifecycle end to end on the real MLflow server and real DVC: train through the
pipeline, register with tags, promote only a significantly better model, refuse the rest with
the numbers, roll back, and never leave the registry half-updated."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from emily import locator
from emily.cli.app import app
from emily.errors import StackNotRunningError
from emily.mlops import lifecycle, registry, versioning
from emily.mlops.promotion import PromotionRefusedError
from emily.mlops.tracking import connect
from tests.fixtures.pipeline import PipelineRepo

RUNNER = CliRunner()
# The first test trains through the whole (small) pipeline: on a loaded 2-core machine that
# takes minutes, which is the fixture's cost, not a hang.
pytestmark = pytest.mark.timeout(1500)


def mlops(repo: PipelineRepo, *args: str) -> Any:
    env = {
        "EMILY_MLOPS__PIPELINE_DIR": str(repo.layout.root),
        "EMILY_MLOPS__DVC_REMOTE_URL": str(repo.remote),
        "EMILY_MLOPS__MODEL_NAME": repo.settings.mlops.model_name,
        "EMILY_MLOPS__EXPERIMENT": repo.settings.mlops.experiment,
        "EMILY_MLOPS__BOOTSTRAP_SAMPLES": str(repo.settings.mlops.bootstrap_samples),
    }
    return RUNNER.invoke(
        app, ["mlops", *args, "--state-dir", str(repo.settings.state_dir)], env=env
    )


def client(repo: PipelineRepo) -> MlflowClient:
    return connect(repo.settings)


def aliases(repo: PipelineRepo) -> dict[str, int | None]:
    c, name = client(repo), repo.settings.mlops.model_name
    return {
        alias: (info.version if (info := registry.by_alias(c, name, alias)) else None)
        for alias in (registry.CHAMPION, registry.CHALLENGER)
    }


def test_first_model_is_registered_with_tags_and_becomes_champion(
    pipeline_repo: PipelineRepo, weak_champion: dict[str, Any]
) -> None:
    assert weak_champion["registered"] and weak_champion["champion"]
    info = registry.get_version(
        client(pipeline_repo), pipeline_repo.settings.mlops.model_name, weak_champion["version"]
    )
    lock = (pipeline_repo.layout.root / "dvc.lock").read_text(encoding="utf-8")
    assert info.tags["validation_status"] == "passed"
    assert info.tags["trained_by"] == "tests"
    assert info.tags["dvc_md5.lexicon"] in lock  # the md5 DVC recorded for the dataset
    assert info.tags["dvc_md5.embeddings"] in lock
    assert len(info.tags["git_commit"].split("-")[0]) == 40
    assert 0.0 < float(info.tags["eval.model.all.r"]) < 1.0
    assert set(info.aliases) >= {"champion"}
    audit = [json.loads(v) for k, v in info.tags.items() if k.startswith("audit.")]
    assert {a["action"] for a in audit} == {"register", "promote"}


def test_training_again_without_changes_is_a_no_op(
    pipeline_repo: PipelineRepo, strong_challenger: dict[str, Any]
) -> None:
    # The workspace holds the last trained model (the strong one).
    output = versioning.repro(pipeline_repo.settings, pipeline_repo.layout)
    assert "Running stage" not in output and "up to date" in output
    again = lifecycle.train(pipeline_repo.settings, trained_by="tests")
    assert again["version"] == strong_challenger["version"] and not again["registered"]


def test_lineage_links_data_run_version_and_aliases(
    pipeline_repo: PipelineRepo, weak_champion: dict[str, Any]
) -> None:
    result = mlops(pipeline_repo, "lineage", str(weak_champion["version"]), "--json")
    assert result.exit_code == 0, result.stderr
    lineage = json.loads(result.stdout)
    md5 = lineage["data"]["md5"]["lexicon"]
    assert lineage["data"]["url"].endswith(md5[2:])  # the DVC remote's content address
    assert str(pipeline_repo.remote) in lineage["data"]["url"]
    assert lineage["data"]["inputs"][0]["name"] == "vader-lexicon"
    assert lineage["run"]["params"]["gamma"] == "0.02"
    assert "champion" in lineage["aliases"]


def test_predict_writes_one_line_per_text(
    pipeline_repo: PipelineRepo, weak_champion: dict[str, Any], tmp_path: Path
) -> None:
    texts = ["what a wonderful gift", "a horrible, painful loss", "ok"]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    result = mlops(pipeline_repo, "predict", "--input", str(path))
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == texts
    assert all(r["model_version"] == weak_champion["version"] for r in rows)
    assert all(-1.0 <= r["valence"] <= 1.0 for r in rows)
    assert rows[0]["valence"] > rows[1]["valence"]
    path.write_text('{"text": "fine"}\n{"txt": "typo"}\n', encoding="utf-8")
    bad = mlops(pipeline_repo, "predict", "--input", str(path))
    assert bad.exit_code == 1 and "row 2" in bad.stderr and "text" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_a_better_challenger_is_promoted_with_its_evidence(
    pipeline_repo: PipelineRepo, strong_challenger: dict[str, Any], weak_champion: dict[str, Any]
) -> None:
    assert strong_challenger["registered"] and not strong_challenger["champion"]
    status = json.loads(mlops(pipeline_repo, "status", "--json").stdout)
    assert status["champion"]["version"] == weak_champion["version"]
    assert status["challenger"]["version"] == strong_challenger["version"]
    assert isinstance(status["champion"]["metrics"]["model.all.r"], float)
    result = mlops(pipeline_repo, "promote", "--approved-by", "reviewer")
    assert result.exit_code == 0, result.stderr
    assert "95 % CI" in result.stdout
    assert aliases(pipeline_repo)["champion"] == strong_challenger["version"]
    info = registry.get_version(
        client(pipeline_repo), pipeline_repo.settings.mlops.model_name, strong_challenger["version"]
    )
    assert info.tags["previous_champion"] == str(weak_champion["version"])
    promoted = [
        json.loads(v) for k, v in info.tags.items() if k.startswith("audit.") and "promote" in k
    ]
    assert promoted[0]["by"] == "reviewer" and promoted[0]["evidence"]["ci_low"] > 0


def test_a_worse_challenger_is_refused_with_the_numbers(
    pipeline_repo: PipelineRepo, strong_challenger: dict[str, Any], weak_champion: dict[str, Any]
) -> None:
    c, name = client(pipeline_repo), pipeline_repo.settings.mlops.model_name
    if aliases(pipeline_repo)["champion"] != strong_challenger["version"]:
        c.set_registered_model_alias(name, registry.CHAMPION, strong_challenger["version"])
    # The weak first model as the challenger of the strong one: tested, tagged, and worse.
    c.set_registered_model_alias(name, registry.CHALLENGER, weak_champion["version"])
    before = aliases(pipeline_repo)
    result = mlops(pipeline_repo, "promote", "--approved-by", "reviewer")
    assert result.exit_code == 3
    assert "not promoted" in result.stderr and "CI" in result.stderr and "p =" in result.stderr
    assert aliases(pipeline_repo) == before


def test_promotion_needs_an_approver(
    pipeline_repo: PipelineRepo, strong_challenger: dict[str, Any]
) -> None:
    settings = pipeline_repo.settings
    with pytest.raises(PromotionRefusedError):
        lifecycle.promote(settings, approved_by="  ")


def test_rollback_restores_the_previous_champion(
    pipeline_repo: PipelineRepo, strong_challenger: dict[str, Any], weak_champion: dict[str, Any]
) -> None:
    if aliases(pipeline_repo)["champion"] != strong_challenger["version"]:
        pytest.fail("the promotion test must run first")
    result = mlops(pipeline_repo, "rollback", "--approved-by", "oncall", "--reason", "drill")
    assert result.exit_code == 0, result.stderr
    assert aliases(pipeline_repo)["champion"] == weak_champion["version"]
    lineage = lifecycle.lineage(pipeline_repo.settings, weak_champion["version"])
    assert lineage["audit"][-1]["action"] == "rollback"
    assert lineage["audit"][-1]["by"] == "oncall"


class _DiesWhenMovingAliases(MlflowClient):
    """The real client against the real server, except that the server 'dies' (a connection
    error) the moment an alias is set: registration must undo itself."""

    def set_registered_model_alias(self, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("server went away")


def test_registration_that_fails_midway_leaves_nothing_behind(
    pipeline_repo: PipelineRepo, weak_champion: dict[str, Any]
) -> None:
    real = client(pipeline_repo)
    name = pipeline_repo.settings.mlops.model_name
    before_versions = {int(mv.version) for mv in real.search_model_versions(f"name = '{name}'")}
    before = aliases(pipeline_repo)
    run = json.loads(pipeline_repo.layout.run_file.read_text(encoding="utf-8"))
    uri = locator.mlflow_uri(pipeline_repo.settings)
    dying = _DiesWhenMovingAliases(tracking_uri=uri, registry_uri=uri)
    with pytest.raises(ConnectionError):
        registry.register(
            dying,
            name,
            model_uri=run["model_uri"],
            run_id=run["run_id"],
            tags=lifecycle.registry_tags(pipeline_repo.layout),
            trained_by="tests",
        )
    after_versions = {int(mv.version) for mv in real.search_model_versions(f"name = '{name}'")}
    assert after_versions == before_versions
    assert aliases(pipeline_repo) == before


def test_an_untested_version_is_never_promoted(
    pipeline_repo: PipelineRepo, weak_champion: dict[str, Any]
) -> None:
    with pytest.raises(registry.RegistryError, match="without"):
        registry.register(
            client(pipeline_repo),
            pipeline_repo.settings.mlops.model_name,
            model_uri="models:/m-unknown",
            run_id="r",
            tags={"run_id": "r"},
            trained_by="tests",
        )


def test_mlflow_down_fails_fast_and_registers_nothing(pipeline_repo: PipelineRepo) -> None:
    mlflow = pipeline_repo.settings.mlflow.model_copy(update={"tracking_uri": "http://127.0.0.1:9"})
    dead = pipeline_repo.settings.model_copy(update={"mlflow": mlflow})
    with pytest.raises(StackNotRunningError, match="does not answer"):
        lifecycle.train(dead, trained_by="tests")


def test_a_missing_dvc_remote_is_a_clear_error(
    pipeline_repo: PipelineRepo, weak_champion: dict[str, Any]
) -> None:
    before = aliases(pipeline_repo)
    mlops_settings = pipeline_repo.settings.mlops.model_copy(
        update={"dvc_remote_url": "s3://emily-no-such-bucket/remote"}
    )
    broken = pipeline_repo.settings.model_copy(update={"mlops": mlops_settings})
    with pytest.raises(versioning.PipelineError, match="dvc push"):
        lifecycle.train(broken, trained_by="tests")
    assert aliases(pipeline_repo) == before
    versioning.ensure_remote(pipeline_repo.settings, pipeline_repo.layout)  # put it back


def test_push_then_pull_restores_the_data(
    pipeline_repo: PipelineRepo, weak_champion: dict[str, Any]
) -> None:
    layout = pipeline_repo.layout
    original = layout.lexicon.read_bytes()
    versioning.push(pipeline_repo.settings, layout)
    layout.lexicon.unlink()
    layout.embeddings.unlink()
    versioning.pull(pipeline_repo.settings, layout)
    assert layout.lexicon.read_bytes() == original
    assert versioning.read_versioned(layout, layout.lexicon) == original


def test_a_run_missing_from_the_server_is_trained_again_there(
    pipeline_repo: PipelineRepo, strong_challenger: dict[str, Any]
) -> None:
    """The workspace's model may come from another tracking server (another state dir): DVC
    says the pipeline is up to date, but its run is not on this server, so training reruns the
    train stage (never from DVC's run cache) and what follows it."""
    settings, layout = pipeline_repo.settings, pipeline_repo.layout
    assert not lifecycle._run_exists(client(pipeline_repo), "0" * 32)
    before = json.loads(layout.run_file.read_text(encoding="utf-8"))["run_id"]
    assert lifecycle._run_exists(client(pipeline_repo), before)
    output = versioning.repro(settings, layout, force_from="train")
    assert "Running stage 'train'" in output and "Running stage 'evaluate'" in output
    after = json.loads(layout.run_file.read_text(encoding="utf-8"))["run_id"]
    assert after != before and lifecycle._run_exists(client(pipeline_repo), after)
    # ... and the pipeline is consistent again: a plain repro has nothing to do.
    assert "Running stage" not in versioning.repro(settings, layout)


@pytest.fixture
def restore_extra(pipeline_repo: PipelineRepo) -> Iterator[Path]:
    extra = pipeline_repo.layout.extra
    yield extra
    for path in extra.glob("*.jsonl"):
        path.unlink()


def test_invalid_data_stops_the_pipeline_at_validation(
    pipeline_repo: PipelineRepo, weak_champion: dict[str, Any], restore_extra: Path
) -> None:
    lock_before = (pipeline_repo.layout.root / "dvc.lock").read_text(encoding="utf-8")
    before = aliases(pipeline_repo)
    (restore_extra / "chat.jsonl").write_text(
        json.dumps({"text": "lol :)", "ratings": [2, 3, 2, 1, 2, 3, 2, 2, 3]}) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(versioning.PipelineError) as caught:
        lifecycle.train(pipeline_repo.settings, trained_by="tests")
    message = str(caught.value)
    assert "row 1" in message and "'ratings'" in message and "9 ratings" in message
    lock_after = (pipeline_repo.layout.root / "dvc.lock").read_text(encoding="utf-8")
    embed = lambda lock: lock.split("embed:")[1].split("drift:")[0]  # noqa: E731
    assert embed(lock_after) == embed(lock_before)  # nothing downstream ran
    assert aliases(pipeline_repo) == before
    # (The workspace is left with outdated stages: later tests use the registry, not it.)


def test_models_loaded_at_once_in_threads_leave_no_stand_in_module_behind(
    pipeline_repo: PipelineRepo, weak_champion: dict[str, Any], strong_challenger: dict[str, Any]
) -> None:
    # The champion's and the challenger's followers load their models at the same time; MLflow
    # swaps a stand-in ``dbutils`` into sys.modules around each load, and interleaved swaps
    # used to leave one there, which broke Hypothesis's scan of sys.modules in later tests.
    client(pipeline_repo)  # points MLflow at the test server
    name = pipeline_repo.settings.mlops.model_name
    uris = [f"models:/{name}/{v['version']}" for v in (weak_champion, strong_challenger)] * 4
    load = lifecycle._load.__wrapped__  # the uncached load: every call really loads
    with ThreadPoolExecutor(max_workers=len(uris)) as pool:
        models = list(pool.map(load, uris))
    assert "dbutils" not in sys.modules
    scores = [m.appraise(["what a wonderful gift"])[0] for m in models]
    assert len({float(s) for s in scores[::2]}) == 1  # one version, one answer
    assert len({float(s) for s in scores[1::2]}) == 1
