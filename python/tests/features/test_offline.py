"""Offline paths: point-in-time correct training sets, the on-demand view computed offline as
online, materialization (incremental with overlap), and backfill repairing the online store —
through the CLI where there is one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from emily.cli.app import app
from emily.features.client import FeatureClient
from emily.features.offline import materialize, training_set
from emily.features.rows import float32
from tests.features.conftest import insert_episodes, online_row, unique
from tests.fixtures.features import FeatureServer

# Far from every other test's episodes, so the windows hold only this test's rows.
T = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def cli(server: FeatureServer, *args: str) -> Any:
    result = CliRunner().invoke(app, ["--state-dir", str(server.settings.state_dir), *args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def pit(feature_server: FeatureServer) -> dict[str, str]:
    thread, kind, twin = unique("pit"), unique("pitkind"), unique("twin")
    insert_episodes(
        feature_server.settings,
        [
            {"thread": thread, "kind": kind, "at": T - timedelta(hours=3), "vad": (0.1, 0, 0)},
            {"thread": thread, "kind": kind, "at": T - timedelta(minutes=30), "vad": (0.5, 0, 0)},
            # Stamped after the entity row at T: must never reach that row.
            {"thread": thread, "kind": kind, "at": T + timedelta(minutes=10), "vad": (0.9, 0, 0)},
            # Two episodes of one thread at the same instant.
            {"thread": twin, "kind": kind, "at": T, "vad": (0.2, 0, 0), "text": "one"},
            {"thread": twin, "kind": kind, "at": T, "vad": (0.4, 0, 0), "text": "two"},
        ],
    )
    return {"thread": thread, "kind": kind, "twin": twin}


def test_point_in_time_join_never_leaks_and_drops_values_older_than_the_ttl(
    feature_server: FeatureServer, fstore: Any, pit: dict[str, str]
) -> None:
    moments = {
        "at T": T,
        "TTL + 1 min": T - timedelta(minutes=59),  # newest row 2 h 1 min old: TTL 2 h
        "exactly TTL": T - timedelta(hours=1),  # the bound is inclusive
        "exactly at e2": T - timedelta(minutes=30),
        "before any data": T - timedelta(hours=4),
        "after e3": T + timedelta(hours=1),
    }
    rows = pd.DataFrame(
        {
            "thread_id": [pit["thread"]] * len(moments),
            "stimulus_kind": [pit["kind"]] * len(moments),
            "event_timestamp": pd.to_datetime(list(moments.values()), utc=True),
        }
    )
    frame = training_set(
        feature_server.settings,
        rows,
        features=["thread_mood_v1:valence_mean_20", "thread_mood_v1:episodes_20"],
        store=fstore,
    )
    got = {
        ts.to_pydatetime(): (v, n)
        for ts, v, n in zip(
            frame["event_timestamp"], frame["valence_mean_20"], frame["episodes_20"], strict=True
        )
    }
    assert len(frame) == len(moments)
    assert str(frame["episodes_20"].dtype) == "Int64"
    by_name = {name: got[moment] for name, moment in moments.items()}
    e1, e2, e3 = float32(0.1), float32(0.5), float32(0.9)
    assert by_name["at T"][0] == pytest.approx((e1 + e2) / 2)
    assert by_name["at T"][1] == 2
    assert pd.isna(by_name["TTL + 1 min"][0])
    assert by_name["exactly TTL"][0] == pytest.approx(e1)
    assert by_name["exactly at e2"][0] == pytest.approx((e1 + e2) / 2)
    assert pd.isna(by_name["before any data"][0])
    assert by_name["after e3"][0] == pytest.approx((e1 + e2 + e3) / 3)


def test_duplicate_event_times_give_one_training_row(
    feature_server: FeatureServer, fstore: Any, pit: dict[str, str]
) -> None:
    rows = pd.DataFrame(
        {
            "thread_id": [pit["twin"]],
            "stimulus_kind": [pit["kind"]],
            "event_timestamp": pd.to_datetime([T + timedelta(minutes=1)], utc=True),
        }
    )
    frame = training_set(feature_server.settings, rows, store=fstore)
    assert len(frame) == 1
    assert frame["episodes_20"].iloc[0] in (1, 2)


def test_naive_entity_timestamps_are_refused(feature_server: FeatureServer) -> None:
    from emily.errors import ConfigError

    rows = pd.DataFrame({"thread_id": ["x"], "event_timestamp": [datetime(2025, 6, 1)]})
    with pytest.raises(ConfigError) as caught:
        training_set(feature_server.settings, rows)
    assert caught.value.field == "event_timestamp"


def test_the_on_demand_view_is_the_same_offline_and_online(
    feature_server: FeatureServer, fstore: Any, pit: dict[str, str]
) -> None:
    at = T + timedelta(hours=1)
    request = {
        "stimulus_valence": 0.2,
        "stimulus_arousal": -0.1,
        "stimulus_dominance": 0.3,
        "request_epoch": at.timestamp(),
    }
    rows = pd.DataFrame(
        {
            "thread_id": [pit["thread"]],
            "stimulus_kind": [pit["kind"]],
            "event_timestamp": pd.to_datetime([at], utc=True),
            **{k: [v] for k, v in request.items()},
        }
    )
    outputs = ["mood_congruence", "affect_intensity", "seconds_since_last_similar"]
    frame = training_set(
        feature_server.settings,
        rows,
        features=[f"stimulus_appraisal_v1:{name}" for name in outputs],
        store=fstore,
    )
    materialize(
        feature_server.settings,
        since=T - timedelta(hours=4),
        until=at,
        views=["thread_mood_v1", "stimulus_last_v1"],
        store=fstore,
    )

    async def read() -> Any:
        async with FeatureClient.from_settings(feature_server.settings) as client:
            return await client.read(
                pit["thread"],
                pit["kind"],
                at=at,
                stimulus_vad=[request["stimulus_valence"], -0.1, 0.3],
            )

    served = asyncio.run(read())
    assert frame["seconds_since_last_similar"].iloc[0] == pytest.approx(50 * 60, abs=1e-3)
    for name in outputs:
        offline = float(frame[name].iloc[0])
        assert served.values[f"stimulus_appraisal_v1:{name}"] == pytest.approx(
            offline, rel=1e-6, abs=1e-3
        ), name


def test_incremental_materialization_catches_late_episodes(
    feature_server: FeatureServer, fstore: Any
) -> None:
    thread = unique("late")
    now = datetime.now(UTC)
    insert_episodes(
        feature_server.settings,
        [{"thread": thread, "at": now - timedelta(minutes=30), "vad": (0.3, 0.1, 0.0)}],
    )
    cli(feature_server, "features", "materialize", "--incremental", "--view", "thread_mood_v1")
    assert online_row(fstore, "thread_mood_v1", "thread_id", thread)["episodes_20"] == 1
    # Stored late, with an event time before the last materialization's end: Feast's own
    # incremental mode starts at that end and would never see it.
    insert_episodes(
        feature_server.settings,
        [{"thread": thread, "at": now - timedelta(minutes=20), "vad": (0.7, 0.1, 0.0)}],
    )
    out = cli(
        feature_server, "features", "materialize", "--incremental", "--view", "thread_mood_v1"
    )
    assert "thread_mood_v1" in out.stdout
    row = online_row(fstore, "thread_mood_v1", "thread_id", thread)
    assert row["episodes_20"] == 2
    assert row["valence_mean_20"] == pytest.approx((float32(0.3) + float32(0.7)) / 2)


def test_backfill_repairs_a_wrong_online_value(feature_server: FeatureServer, fstore: Any) -> None:
    kind = unique("repair")
    now = datetime.now(UTC)
    at = now - timedelta(minutes=10)
    insert_episodes(
        feature_server.settings,
        [{"thread": unique("t"), "kind": kind, "at": at, "vad": (-0.5, 0.2, 0.1)}],
    )

    async def push_wrong() -> None:
        async with FeatureClient.from_settings(feature_server.settings) as client:
            await client.push(
                "stimulus_push_v1",
                [
                    {
                        "stimulus_kind": kind,
                        "occurred_at": now - timedelta(seconds=1),  # newer than the episode
                        "last_seen_epoch": 1.0,
                        "last_valence": 0.99,
                        "last_arousal": 0.0,
                        "last_dominance": 0.0,
                    }
                ],
            )

    asyncio.run(push_wrong())
    assert online_row(fstore, "stimulus_last_v1", "stimulus_kind", kind)["last_valence"] == 0.99
    # Materializing alone cannot repair it: the wrong value is the newer event.
    materialize(
        feature_server.settings,
        since=at - timedelta(minutes=1),
        views=["stimulus_last_v1"],
        store=fstore,
    )
    assert online_row(fstore, "stimulus_last_v1", "stimulus_kind", kind)["last_valence"] == 0.99
    out = cli(feature_server, "features", "backfill", "--since", "1h", "--view", "stimulus_last_v1")
    assert "online rows deleted first" in out.stdout
    row = online_row(fstore, "stimulus_last_v1", "stimulus_kind", kind)
    assert row["last_valence"] == pytest.approx(float32(-0.5))
    assert row["last_seen_epoch"] == pytest.approx(at.timestamp())


def test_cli_refuses_bad_times_and_views(feature_server: FeatureServer) -> None:
    runner = CliRunner()
    base = ["--state-dir", str(feature_server.settings.state_dir), "features"]
    for args, words in (
        (["backfill", "--since", "2026-01-01T00:00:00"], "time zone"),
        (["materialize", "--since", "last tuesday"], "not a time"),
        (["materialize", "--view", "nope_v1"], "unknown feature view"),
    ):
        result = runner.invoke(app, [*base, *args])
        assert result.exit_code == 1, result.output
        assert words in result.output
