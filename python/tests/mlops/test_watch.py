"""The closed loop on the real stack: monitoring passes over stored turns (MMD on real MiniLM
embeddings, the champion's error on human ratings from the VADER lexicon), logged to MLflow and
written as Prometheus gauges; `emily mlops watch` doing nothing without drift, refusing to run
twice at once, waiting for labelled data, refusing new data that fails validation, leaving the
aliases as they were when killed midway, then retraining and promoting or
keeping with its evidence, doing nothing the second time, and rolling a degraded champion back.

Turns are stored as consolidate stores them, dated a day ahead so they are the newest turns of
the session's database whatever other tests stored."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emily.config import Settings
from emily.memory.embedding.factory import create_embedder
from emily.memory.store import MemoryStore
from emily.mlops import lifecycle, registry, versioning
from emily.mlops.appraisal.lexicon import LexiconRow, installed_lexicon, read_lexicon
from emily.mlops.monitoring import metrics_file, monitor
from emily.mlops.tracking import connect
from emily.mlops.watch import exclusive, lock_path, watch_once
from tests.fixtures.pipeline import SMALL, PipelineRepo, mlops_env, write_params

pytestmark = pytest.mark.timeout(1500)


@pytest.fixture(scope="module")
def lexicon() -> dict[str, list[LexiconRow]]:
    rows = read_lexicon(installed_lexicon())
    random.Random(11).shuffle(rows)
    return {
        "word": [r for r in rows if r.kind == "word"],
        "other": [r for r in rows if r.kind == "other"],
    }


@pytest.fixture(scope="module")
def watched(pipeline_repo: PipelineRepo, weak_champion: dict[str, Any]) -> Settings:
    """The pipeline's settings with a model of the test's own, a small window and a bar for new
    data. Its first champion is the deliberately over-smoothed "weak" run, registered again
    under this name, so that a retraining on the pipeline's usual parameters is better."""
    base = pipeline_repo.settings
    mlops = base.mlops.model_copy(
        update={
            "model_name": base.mlops.model_name + "-watch",
            "monitor_window": 40,
            "monitor_reference": 60,
            # Other tests store rated turns too (the A/B loop test: 16): more than that.
            "watch_min_labelled": 30,
        }
    )
    settings = base.model_copy(update={"mlops": mlops})
    MemoryStore(settings).migrate()
    # Earlier tests may leave the shared workspace out of date (a parameter changed back, data
    # removed): bring it up to date, so that only this test's passes give the pipeline work.
    versioning.repro(settings, lifecycle.layout_of(settings))
    client = connect(settings)
    weak = registry.get_version(client, base.mlops.model_name, int(weak_champion["version"]))
    assert weak.run_id is not None
    tags = {k: v for k, v in weak.tags.items() if not k.startswith("audit.")}
    _, first = registry.register(
        client,
        mlops.model_name,
        model_uri=weak.source,
        run_id=weak.run_id,
        tags=tags,
        trained_by="tests",
    )
    assert first
    return settings


class Turns:
    """Stores agent turns: the champion appraises each text, ratings are the lexicon's."""

    def __init__(self, settings: Settings, days_ahead: int = 1) -> None:
        self.settings = settings
        self.embedder = create_embedder(settings)
        self.at = datetime.now(UTC) + timedelta(days=days_ahead)
        self.count = 0

    def store(
        self, rows: list[LexiconRow], *, labelled: bool, flip: bool = False, thread: str = "w"
    ) -> None:
        texts = [r.token for r in rows]
        vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32)
        model, info = lifecycle.load_model(self.settings, "@champion")
        predicted = model.appraise(texts, vectors)
        episodes = []
        for row, vector, valence in zip(rows, vectors, predicted, strict=True):
            self.count += 1
            self.at += timedelta(seconds=1)
            ratings = [-r for r in row.ratings] if flip else list(row.ratings)
            human = sum(ratings) / len(ratings) / 4.0
            context: dict[str, Any] = {
                "thread_id": f"watch-{thread}-{self.count // 10}",
                "turn": self.count,
                "appraised_by": f"{self.settings.mlops.model_name}/{info.version}",
                "appraised_valence": float(valence),
            }
            if labelled:
                context.update(
                    ratings=ratings,
                    human_valence=human,
                    appraisal_error=abs(float(valence) - human),
                )
            episodes.append(
                {
                    "content": row.token,
                    "occurred_at": self.at,
                    "affect": [max(-1.0, min(1.0, float(valence))), 0.0, 0.0],
                    "context": context,
                    "embedding": [float(x) for x in vector],
                }
            )
        with MemoryStore(self.settings) as store:
            store.add_many(episodes)


def kill_during_repro(settings: Settings) -> bool:
    """``emily mlops watch`` in its own process group, killed (SIGKILL, the whole group) as
    soon as it runs ``dvc repro``; ``True`` when it got that far."""
    mlops = settings.mlops
    env = {
        **os.environ,
        **mlops_env(
            settings,
            monitor_window=80,
            monitor_reference=mlops.monitor_reference,
            watch_min_labelled=mlops.watch_min_labelled,
        ),
    }
    cli = [sys.executable, "-c", "from emily.cli import main; main()", "mlops", "watch"]
    process = subprocess.Popen(
        cli, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 600
    reached = False
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if any("repro" in c for c in descendants_cmdlines(process.pid)):
                reached = True
                break
            time.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
    return reached


def descendants_cmdlines(pid: int) -> list[str]:
    """Command lines of every process in ``pid``'s session (its group, started anew)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != pid:
                continue
            found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ProcessLookupError):
            continue
    return found


def aliases(settings: Settings) -> tuple[int | None, int | None]:
    client, name = connect(settings), settings.mlops.model_name
    champion = registry.by_alias(client, name, registry.CHAMPION)
    challenger = registry.by_alias(client, name, registry.CHALLENGER)
    return (
        champion.version if champion else None,
        challenger.version if challenger else None,
    )


def test_monitor_and_watch_close_the_loop(
    watched: Settings, lexicon: dict[str, list[LexiconRow]]
) -> None:
    settings = watched
    turns = Turns(settings)
    words, chat = lexicon["word"], lexicon["other"]

    # No drift: words after words. The monitor says so, records it, and watch does nothing.
    turns.store(words[:100], labelled=False)
    report = monitor(settings)
    drift = report.check("stimulus_drift")
    assert not drift.skipped and (drift.n_reference, drift.n_current) == (60, 40)
    assert not drift.alert and drift.p_value is not None and drift.p_value > 0.01
    assert report.check("champion_error").skipped  # no labelled turn yet
    assert report.run_id is not None
    gauges = metrics_file(settings).read_text(encoding="utf-8")
    assert 'emily_monitor{check="stimulus_drift",value="alert"} 0.0' in gauges
    assert watch_once(settings).action == "nothing"

    # Another pass holding the lock: this one returns at once and changes nothing.
    with exclusive(lock_path(settings)) as held:
        assert held
        assert watch_once(settings).action == "busy"

    # The stream shifts to chat-like text (emoticons, slang): drift, but no labels yet.
    turns.store(chat[:40], labelled=False)
    shifted = monitor(settings)
    assert shifted.check("stimulus_drift").alert
    assert shifted.check("stimulus_drift").p_value < settings.drift.monitor_alpha
    history = connect(settings).get_metric_history(shifted.run_id, "monitor.stimulus_drift.alert")
    assert [m.value for m in history][-2:] == [0.0, 1.0]
    gauges = metrics_file(settings).read_text(encoding="utf-8")
    assert 'emily_monitor{check="stimulus_drift",value="alert"} 1.0' in gauges
    decision = watch_once(settings)
    assert decision.action == "drift-without-data" and "new labelled texts" in decision.reason

    # Labelled chat arrives, but the new dataset fails validation (its row bounds set
    # impossibly high here): refused, with the reason, and no alias moved. (The window now
    # spans the whole shift.)
    before = aliases(settings)
    layout = lifecycle.layout_of(settings)
    write_params(layout, validate={"min_rows": 10**6})
    turns.store(chat[40:80], labelled=True)
    refused = watch_once(settings, window=80)
    assert refused.action == "refused" and "validate" in refused.reason, refused
    # (Chat the pipeline's sample of the lexicon holds already is not new data.)
    assert refused.new_rows >= settings.mlops.watch_min_labelled and refused.data_file is not None
    assert aliases(settings) == before

    # Validation restored, a pass is killed while DVC runs: the aliases are as they were and
    # the lock is free again.
    write_params(layout, validate={"min_rows": SMALL["validate"]["min_rows"]})
    killed = kill_during_repro(settings)
    assert killed, "the watch pass never reached dvc repro"
    assert aliases(settings) == before

    # The next pass finds no new text but an unfinished pipeline: it trains, compares and
    # promotes, with its evidence.
    # (Against the over-smoothed first champion the retrained model is clearly better.)
    decision = watch_once(settings, window=80)
    assert decision.action == "promoted", decision
    assert decision.new_rows == 0 and decision.evidence["comparison"]["better"]
    assert decision.challenger is not None and decision.challenger != before[0]
    champion, challenger = aliases(settings)
    info = registry.get_version(connect(settings), settings.mlops.model_name, decision.challenger)
    assert info.tags["watch_decision"].startswith("promoted")
    assert champion == decision.challenger and info.tags["previous_champion"] == str(before[0])
    run = connect(settings).get_run(decision.monitor.run_id)  # type: ignore[union-attr]
    assert run.data.tags["emily.watch.last_action"] == decision.action

    # Again: no new labelled text, nothing retrained, nothing moved.
    again = watch_once(settings, window=80)
    assert again.action == "drift-without-data" and again.new_rows == 0
    assert aliases(settings) == (champion, challenger)


def test_a_degraded_champion_is_rolled_back(
    watched: Settings, lexicon: dict[str, list[LexiconRow]]
) -> None:
    settings = watched
    client, name = connect(settings), settings.mlops.model_name
    champion, _ = aliases(settings)
    assert champion is not None
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    assert len(versions) >= 2  # the first registration and the watch's retraining
    newest, older = versions[-1], versions[0]
    # The newest version as the champion that replaced the older one (what a promotion leaves).
    client.set_model_version_tag(name, str(newest), "previous_champion", str(older))
    client.set_registered_model_alias(name, registry.CHAMPION, str(newest))
    # Its appraisals now meet ratings of the opposite sign: its error is far past its threshold.
    # (Two days ahead: after every turn the previous test stored.)
    Turns(settings, days_ahead=2).store(
        lexicon["word"][200:260], labelled=True, flip=True, thread="r"
    )
    decision = watch_once(settings)
    assert decision.action == "rolled-back", decision
    assert (decision.champion_before, decision.champion_after) == (newest, older)
    assert aliases(settings)[0] == older
    error = decision.evidence["champion_error"]
    assert error["alert"] and error["statistic"] > error["threshold"]
    info = registry.get_version(client, name, newest)
    assert "rolled_back" in info.tags


def store_ab_turns(
    settings: Settings,
    rows: list[LexiconRow],
    experiment: str,
    versions: dict[str, int],
    errors: dict[str, float],
    threads: int,
) -> None:
    """Labelled turns of an A/B experiment, ``threads`` threads assigned by the real hash; each
    arm's appraisal misses the human valence by its ``errors`` (± a little)."""
    from emily.mlops.abtest.assignment import assign_arm

    embedder = create_embedder(settings)
    vectors = np.asarray(embedder.embed([r.token for r in rows]), dtype=np.float32)
    noise = np.random.default_rng(5).uniform(-0.02, 0.02, len(rows))
    at = datetime.now(UTC) + timedelta(days=3)
    name = settings.mlops.model_name
    episodes = []
    for index, (row, vector) in enumerate(zip(rows, vectors, strict=True)):
        thread = f"{experiment}-t{index % threads}"
        arm = assign_arm(thread, experiment=experiment, challenger_share=0.5)
        human = sum(row.ratings) / len(row.ratings) / 4.0
        error = errors[arm] + float(noise[index])
        predicted = human + error if human < 0 else human - error
        episodes.append(
            {
                "content": row.token,
                "occurred_at": at + timedelta(seconds=index),
                "affect": [max(-1.0, min(1.0, predicted)), 0.0, 0.0],
                "context": {
                    "thread_id": thread,
                    "turn": index,
                    "appraised_by": f"{name}/{versions[arm]}",
                    "appraised_valence": predicted,
                    "ratings": list(row.ratings),
                    "human_valence": human,
                    "appraisal_error": abs(predicted - human),
                    "ab_experiment": experiment,
                    "ab_arm": arm,
                },
                "embedding": [float(x) for x in vector],
            }
        )
    with MemoryStore(settings) as store:
        store.add_many(episodes)


def test_an_ab_period_waits_while_inconclusive_and_drops_a_worse_challenger(
    watched: Settings, lexicon: dict[str, list[LexiconRow]]
) -> None:
    """With `mlops.watch_ab`, a challenger under test is decided by the experiment's report:
    left running while inconclusive, dropped (alias removed, decision tagged) when worse."""
    from emily.agents.ab import experiment_name
    from emily.mlops.watch import AB_STAGE_TAG

    settings = watched.model_copy(
        update={"mlops": watched.mlops.model_copy(update={"watch_ab": True})}
    )
    client, name = connect(settings), settings.mlops.model_name
    champion, _ = aliases(settings)
    assert champion is not None
    other = max(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    other = (
        other
        if other != champion
        else min(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    )
    client.set_registered_model_alias(name, registry.CHALLENGER, str(other))
    client.set_model_version_tag(name, str(other), AB_STAGE_TAG, "ab")
    experiment = experiment_name(f"{name}/{champion}", f"{name}/{other}")
    versions = {"champion": champion, "challenger": other}
    words = lexicon["word"][400:520]

    # Two threads: one arm has at most one thread, too few to decide whatever the hash says;
    # the experiment keeps running, nothing moves.
    worse = {"champion": 0.1, "challenger": 0.3}
    store_ab_turns(settings, words[:8], experiment, versions, worse, 2)
    running = watch_once(settings)
    assert running.action == "ab-running", running
    assert aliases(settings) == (champion, other)

    # Forty threads where the challenger errs clearly more: kept out, the test stops with it.
    store_ab_turns(settings, words[8:], experiment, versions, worse, 40)
    kept = watch_once(settings)
    assert kept.action == "ab-kept", kept
    ab = kept.evidence["ab"]
    assert ab["experiment"] == experiment and ab["decision"] == "keep"
    assert ab["effect"] > 0 and ab["ci"]["low"] > 0
    assert aliases(settings) == (champion, None)
    info = registry.get_version(client, name, other)
    assert info.tags["watch_decision"].startswith("ab-kept")


def test_the_commands_print_the_pass_as_json(watched: Settings) -> None:
    """`emily mlops monitor --json` and `emily mlops watch --json`, as the NixOS timers run them."""
    from typer.testing import CliRunner

    from emily.cli.app import app

    mlops = watched.mlops
    env = mlops_env(
        watched,
        monitor_window=mlops.monitor_window,
        monitor_reference=mlops.monitor_reference,
        watch_min_labelled=100000,  # never retrain here
    )
    base = ["--state-dir", str(watched.state_dir), "mlops"]
    monitored = CliRunner(env=env).invoke(app, [*base, "monitor", "--json"])
    assert monitored.exit_code == 0, monitored.output
    report = json.loads(monitored.stdout)
    assert [c["name"] for c in report["checks"]] == [
        "data_quality",
        "stimulus_drift",
        "prediction_drift",
        "champion_error",
        "feature_drift",
    ]
    assert report["champion"].startswith(f"{mlops.model_name}/") and report["run_id"]
    watched_pass = CliRunner(env=env).invoke(app, [*base, "watch", "--json"])
    assert watched_pass.exit_code == 0, watched_pass.output
    decision = json.loads(watched_pass.stdout)
    assert decision["action"] in ("nothing", "drift-without-data", "rolled-back")
    assert decision["monitor"]["run_id"] == report["run_id"]
