"""Feature monitoring: freshness against the TTL, missing values, drift against the training
baseline (the ``emily.drift`` detectors), as ``emily features monitor`` and as Prometheus gauges
on the agents service's ``/metrics``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from typer.testing import CliRunner

from emily.cli.app import app
from emily.features.metrics import FeatureGauges
from emily.features.monitor import ViewHealth, monitor
from emily.features.offline import materialize, record_baseline
from emily.features.training import baseline_from_episodes
from tests.features.conftest import insert_episodes, unique
from tests.fixtures.features import FeatureServer

# Three quiet windows of their own: the baseline, a window like it, and a shifted one.
BASE = datetime(2025, 3, 2, 12, tzinfo=UTC)
SAME = datetime(2025, 3, 10, 12, tzinfo=UTC)
SHIFTED = datetime(2025, 3, 20, 12, tzinfo=UTC)


def window(start: datetime, shift: float, seed: int, kind: str) -> list[dict[str, Any]]:
    """20 threads of 3 episodes each: the rolling features of different threads are
    independent, as a two-sample test assumes (rows of one long thread are not)."""
    rng = np.random.default_rng(seed)
    items: list[dict[str, Any]] = []
    for t in range(20):
        thread = unique("mon")
        for i in range(3):
            items.append(
                {
                    "thread": thread,
                    "kind": kind,
                    "at": start + timedelta(minutes=10 * t + i),
                    "vad": (float(np.clip(rng.normal(shift, 0.2), -1, 1)), 0.1, 0.0),
                    "turn": i + 1,
                    "text": f"episode {t}.{i}",
                    **({} if (3 * t + i) % 4 == 0 else {"confidence": 0.5}),
                }
            )
    return items


@pytest.fixture(scope="module")
def windows(feature_server: FeatureServer) -> dict[str, str]:
    settings = feature_server.settings
    kinds = {name: unique(name) for name in ("base", "same", "shifted")}
    insert_episodes(settings, window(BASE, 0.0, 1, kinds["base"]))
    insert_episodes(settings, window(SAME, 0.0, 2, kinds["same"]))
    insert_episodes(settings, window(SHIFTED, 0.8, 3, kinds["shifted"]))
    kept = baseline_from_episodes(
        settings, since=BASE - timedelta(hours=1), until=BASE + timedelta(hours=5), label="base"
    )
    assert kept["thread_mood_v1:valence_mean_20"] == 60
    return kinds


def view(report: Any, name: str) -> ViewHealth:
    found: ViewHealth = next(v for v in report.views if v.view == name)
    return found


def test_drift_is_flagged_against_the_baseline_and_only_when_it_is_there(
    feature_server: FeatureServer, windows: dict[str, str]
) -> None:
    settings = feature_server.settings
    like = view(monitor(settings, now=SAME + timedelta(hours=4)), "thread_mood_v1")
    assert like.baseline == "base" and like.rows == 60
    assert {d.feature for d in like.drift} >= {"valence_mean_20", "valence_var_20"}
    assert not [d.feature for d in like.drift if d.drift]
    assert not any(f.startswith("drifting") for f in like.flags)
    shifted = view(monitor(settings, now=SHIFTED + timedelta(hours=4)), "thread_mood_v1")
    drifting = {d.feature for d in shifted.drift if d.drift}
    assert "valence_mean_20" in drifting
    assert "arousal_mean_20" not in drifting  # unchanged
    valence = next(d for d in shifted.drift if d.feature == "valence_mean_20")
    assert valence.adjusted_p_value is not None and valence.adjusted_p_value < 0.05
    assert valence.psi is not None and valence.psi > 0.25
    assert any(f.startswith("drifting:") and "valence_mean_20" in f for f in shifted.flags)


def test_missing_values_and_freshness(
    feature_server: FeatureServer, fstore: Any, windows: dict[str, str]
) -> None:
    settings = feature_server.settings
    moment = SAME + timedelta(hours=4)
    before = monitor(settings, now=moment)
    decision = view(before, "thread_decision_v1")
    # One episode in four has no recorded confidence.
    assert decision.missing_rate["appraisal_confidence"] == pytest.approx(15 / 60)
    assert not any(f.startswith("missing") for f in decision.flags)  # nullable by definition
    mood = view(before, "thread_mood_v1")
    assert mood.missing_rate["valence_mean_20"] == 0.0
    # Nothing of this window was ever materialized: its threads have no fresh online row.
    assert "online_missing" in mood.flags and mood.online_missing_rate == 1.0
    assert mood.online_missing_rate is not None
    materialize(
        settings,
        since=SAME - timedelta(hours=1),
        until=moment,
        views=["thread_mood_v1", "stimulus_habituation_v1"],
        store=fstore,
    )
    after = monitor(settings, now=moment)
    assert view(after, "thread_mood_v1").online_missing_rate == 0.0
    habituation = view(after, "stimulus_habituation_v1")
    assert habituation.online_age_s is not None
    # The same online rows three hours later: older than the habituation TTL (1 h), not than
    # the mood's (2 h) ... until two more hours pass.
    later = monitor(settings, now=datetime.now(UTC) + timedelta(hours=3))
    assert "stale" in view(later, "stimulus_habituation_v1").flags
    assert view(later, "stimulus_last_v1").ttl_s == 86400.0


def test_monitor_cli_json_and_gauges(
    feature_server: FeatureServer, windows: dict[str, str]
) -> None:
    settings = feature_server.settings
    result = CliRunner().invoke(
        app, ["--state-dir", str(settings.state_dir), "features", "monitor", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [v["view"] for v in payload["views"]] == [
        "thread_mood_v1",
        "thread_decision_v1",
        "stimulus_last_v1",
        "stimulus_habituation_v1",
    ]
    assert set(payload["flagged"]) == {v["view"] for v in payload["views"] if v["flags"]}
    table = CliRunner().invoke(app, ["--state-dir", str(settings.state_dir), "features", "monitor"])
    assert table.exit_code == 0 and "feature monitor (emily)" in table.stdout
    registry = CollectorRegistry()
    gauges = FeatureGauges(registry, settings)
    assert gauges.refresh(force=True) is not None
    assert gauges.refresh() is None  # within metrics_refresh_s: the last values stand
    text = generate_latest(registry).decode()
    assert "emily_feature_monitor_up 1.0" in text
    assert 'emily_feature_ttl_seconds{view="stimulus_habituation_v1"} 3600.0' in text
    assert 'emily_feature_age_seconds{store="online",view="thread_mood_v1"}' in text
    assert (
        'emily_feature_missing_rate{feature="appraisal_confidence",view="thread_decision_v1"}'
        in text
    )


def test_record_baseline_refuses_a_frame_without_features(feature_server: FeatureServer) -> None:
    import pandas as pd

    from emily.errors import ConfigError

    with pytest.raises(ConfigError):
        record_baseline(feature_server.settings, pd.DataFrame({"other": [1.0]}), label="x")


def test_the_agents_service_exports_the_feature_gauges(feature_server: FeatureServer) -> None:
    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from emily.agents.api import create_app

    settings = feature_server.settings
    serving = settings.model_copy(
        update={
            "agents": settings.agents.model_copy(
                update={"api_token": SecretStr("t0ken"), "memory_enabled": False}
            )
        }
    )
    with TestClient(create_app(serving)) as client:  # opens its own agent
        text = client.get("/metrics").text
    assert "emily_feature_monitor_up 1.0" in text
    assert 'emily_feature_flagged{view="stimulus_last_v1"}' in text
