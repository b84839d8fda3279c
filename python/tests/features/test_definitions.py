"""The repository's definitions, the push validator, the window arithmetic and the online-layout
helpers, checked without servers (Feast's own functions are the reference where we mirror them)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emily.config import load_settings
from emily.errors import ConfigError
from emily.features import online, rows, schema
from emily.features.client import parse_online
from emily.features.validation import FeaturePushError, validate_push

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def thread_push(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "thread_id": "t-1",
        "occurred_at": NOW - timedelta(minutes=1),
        "valence_mean_20": 0.1,
        "arousal_mean_20": 0.2,
        "dominance_mean_20": 0.0,
        "valence_var_20": 0.0,
        "arousal_var_20": 0.0,
        "dominance_var_20": 0.0,
        "degraded_rate_20": 0.0,
        "episodes_20": 1,
        "turn": 1,
        "appraisal_confidence": 0.5,
        "appraisal_confidence_mean_20": 0.5,
        "cognition_rate_20": 0.0,
    }
    row.update(changes)
    return row


def check(batch: Any, source: str = "thread_turn_push_v1", max_rows: int = 10) -> Any:
    return validate_push(source, batch, max_rows=max_rows, max_future_s=300, now=NOW)


# -- definitions -------------------------------------------------------------------------------


def test_every_feast_object_has_description_owner_and_tags() -> None:
    from emily.features.repo import build

    objects = build("emily_features")
    described = [o for o in objects if type(o).__name__ != "Permission"]
    assert {type(o).__name__ for o in described} >= {
        "Entity",
        "PostgreSQLSource",
        "PushSource",
        "FeatureView",
        "OnDemandFeatureView",
        "FeatureService",
    }
    for obj in described:
        assert obj.description, obj.name
        assert obj.owner == schema.OWNER, obj.name
        assert obj.tags, obj.name
    views = [o for o in objects if type(o).__name__ == "FeatureView"]
    assert {v.name for v in views} == {v.name for v in schema.VIEWS}
    for view in views:
        assert all(f.description for f in view.features), view.name
        assert int(view.tags["ttl_s"]) == int(view.ttl.total_seconds())
    (odfv,) = [o for o in objects if type(o).__name__ == "OnDemandFeatureView"]
    # Feast refuses described on-demand outputs; their meaning is kept in the tags.
    assert {f"field:{f.name}" for f in odfv.features} <= set(odfv.tags)
    assert [p.name for p in objects if type(p).__name__ == "Permission"] == [
        "feature_readers",
        "turn_writers",
        "feature_admins",
    ]


def test_names_are_versioned_and_features_unique() -> None:
    names = [
        *(v.name for v in schema.VIEWS),
        *(p.name for p in schema.PUSH_SOURCES),
        *(s.name for s in schema.SERVICES),
        schema.STIMULUS_APPRAISAL.name,
    ]
    assert all(re.fullmatch(r"[a-z_]+_v\d+", n) for n in names), names
    features = [f.name for v in schema.VIEWS for f in v.fields]
    features += [f.name for f in schema.STIMULUS_APPRAISAL.fields]
    # The client asks for short names and attributes each to its view by name.
    assert len(features) == len(set(features))
    assert set(schema.view_of()) == set(features)


def test_ttls_are_covered_by_the_redis_expiry() -> None:
    settings = load_settings()
    assert settings.features.key_ttl_s >= schema.MAX_TTL.total_seconds()
    assert {v.name: v.ttl for v in schema.VIEWS} == {
        "thread_mood_v1": timedelta(hours=2),
        "thread_decision_v1": timedelta(days=1),
        "stimulus_last_v1": timedelta(days=1),
        "stimulus_habituation_v1": timedelta(hours=1),
    }


# -- push validation ---------------------------------------------------------------------------


def test_a_valid_row_is_normalised() -> None:
    (row,) = check([thread_push(occurred_at=(NOW - timedelta(hours=1)).isoformat(), turn=3)])
    assert row["occurred_at"] == NOW - timedelta(hours=1)
    assert row["occurred_at"].tzinfo is UTC
    assert isinstance(row["valence_mean_20"], float) and row["turn"] == 3


@pytest.mark.parametrize(
    ("batch", "field", "row", "words"),
    [
        ([thread_push(extra=1)], "extra", 1, "unknown column"),
        ([{k: v for k, v in thread_push().items() if k != "turn"}], "turn", 1, "missing"),
        ([thread_push(), thread_push(valence_mean_20="0.5")], "valence_mean_20", 2, "number"),
        ([thread_push(valence_mean_20=True)], "valence_mean_20", 1, "number"),
        ([thread_push(turn=1.5)], "turn", 1, "integer"),
        ([thread_push(turn=2**63)], "turn", 1, "int64"),
        ([thread_push(arousal_mean_20=math.nan)], "arousal_mean_20", 1, "NaN"),
        ([thread_push(arousal_mean_20=math.inf)], "arousal_mean_20", 1, "finite"),
        ([thread_push(arousal_mean_20=None)], "arousal_mean_20", 1, "null"),
        ([thread_push(appraisal_confidence=math.nan)], "appraisal_confidence", 1, "NaN"),
        ([thread_push(occurred_at=datetime(2026, 3, 1, 11))], "occurred_at", 1, "naive"),
        ([thread_push(occurred_at="2026-03-01T11:00:00")], "occurred_at", 1, "naive"),
        ([thread_push(occurred_at="yesterday")], "occurred_at", 1, "ISO-8601"),
        ([thread_push(occurred_at=1767268800)], "occurred_at", 1, "timestamp"),
        ([thread_push(occurred_at=NOW + timedelta(days=30))], "occurred_at", 1, "future"),
        ([thread_push(thread_id=123)], "thread_id", 1, "string"),
        ([thread_push(thread_id="no spaces allowed")], "thread_id", 1, "entity key"),
        ([thread_push(thread_id="")], "thread_id", 1, "entity key"),
        ([thread_push(thread_id="t-1\n")], "thread_id", 1, "entity key"),
        ([thread_push(), thread_push()], "thread_id", 2, "row 1"),
        ([thread_push()] * 11, "rows", None, "at most 10"),
        ([], "rows", None, "empty"),
        ([["not", "a", "row"]], "rows", 1, "object"),
        ({"thread_id": "t-1"}, "rows", None, "list"),
    ],
)
def test_bad_pushes_name_the_field_and_row(
    batch: Any, field: str, row: int | None, words: str
) -> None:
    with pytest.raises(FeaturePushError) as caught:
        check(batch)
    assert caught.value.field == field
    assert caught.value.row == row
    assert words in str(caught.value)


def test_nullable_features_accept_null() -> None:
    (row,) = check([thread_push(appraisal_confidence=None, appraisal_confidence_mean_20=None)])
    assert row["appraisal_confidence"] is None


def test_unknown_push_source_and_wrong_entity_column() -> None:
    with pytest.raises(FeaturePushError) as caught:
        check([thread_push()], source="nope_v1")
    assert caught.value.field == "push_source"
    stimulus = {
        "thread_id": "t-1",  # the thread's key on the stimulus source: an unknown entity here
        "occurred_at": NOW,
        "last_seen_epoch": NOW.timestamp(),
        "last_valence": 0.0,
        "last_arousal": 0.0,
        "last_dominance": 0.0,
    }
    with pytest.raises(FeaturePushError) as caught:
        check([stimulus], source="stimulus_push_v1")
    assert caught.value.field == "thread_id" and "unknown column" in caught.value.message


# -- windows -----------------------------------------------------------------------------------


def episodes(count: int) -> list[rows.WindowEpisode]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        rows.window_episode(
            episode_id=i,
            at=start + timedelta(minutes=i),
            affect=[math.sin(i), math.cos(i) * 1.5, -0.3],  # arousal clamps to [-1, 1]
            degraded=i % 4 == 0,
            layer="cognition" if i % 3 == 0 else "affect",
            confidence=None if i % 5 == 0 else i / 100,
            turn=i,
        )
        for i in range(1, count + 1)
    ]


def test_thread_row_is_the_last_twenty_stored_episodes() -> None:
    window: list[rows.WindowEpisode] = []
    for item in episodes(25):
        window = rows.add_to_window(window, item)
    assert len(window) == schema.WINDOW and window[0]["episode_id"] == 6
    row = rows.thread_row("t-1", window, window[-1])
    last20 = list(range(6, 26))
    valence = [rows.float32(math.sin(i)) for i in last20]
    assert row["valence_mean_20"] == pytest.approx(sum(valence) / 20, abs=1e-12)
    mean = sum(valence) / 20
    assert row["valence_var_20"] == pytest.approx(
        sum((v - mean) ** 2 for v in valence) / 20, abs=1e-12
    )
    assert max(w["arousal"] for w in window) <= 1.0
    assert row["degraded_rate_20"] == pytest.approx(sum(i % 4 == 0 for i in last20) / 20)
    assert row["cognition_rate_20"] == pytest.approx(sum(i % 3 == 0 for i in last20) / 20)
    confidences = [i / 100 for i in last20 if i % 5]
    assert row["appraisal_confidence_mean_20"] == pytest.approx(sum(confidences) / 16)
    assert row["appraisal_confidence"] is None  # episode 25: not recorded
    assert row["episodes_20"] == 20 and row["turn"] == 25
    check_rows = validate_push(
        "thread_turn_push_v1", [row], max_rows=1, max_future_s=0, now=datetime.now(UTC)
    )
    assert check_rows[0]["valence_mean_20"] == row["valence_mean_20"]


def test_a_backdated_episode_is_windowed_where_it_belongs() -> None:
    window: list[rows.WindowEpisode] = []
    for item in episodes(5):
        window = rows.add_to_window(window, item)
    late = rows.window_episode(
        episode_id=99,
        at=datetime(2026, 1, 1, 0, 2, 30, tzinfo=UTC),  # between episodes 2 and 3
        affect=[1.0, 0.0, 0.0],
        degraded=False,
        layer="affect",
        confidence=0.9,
        turn=6,
    )
    window = rows.add_to_window(window, late)
    row = rows.thread_row("t-1", window, late)
    # Only what precedes it in (occurred_at, id) order: episodes 1, 2 and itself.
    expected = [rows.float32(math.sin(1)), rows.float32(math.sin(2)), 1.0]
    assert row["episodes_20"] == 3
    assert row["valence_mean_20"] == pytest.approx(sum(expected) / 3)
    stimulus = rows.stimulus_row("user", late)
    assert stimulus["last_seen_epoch"] == late_epoch()


def late_epoch() -> float:
    return datetime(2026, 1, 1, 0, 2, 30, tzinfo=UTC).timestamp()


# -- reading Feast's answer --------------------------------------------------------------------


def answer(stamps: dict[str, str]) -> dict[str, Any]:
    owners = schema.view_of()
    names = ["thread_id", "stimulus_kind", *owners]
    results = [
        {"values": ["x"], "statuses": ["PRESENT"], "event_timestamps": ["1970-01-01T00:00:00Z"]}
    ] * 2
    for name in owners:
        results.append(
            {
                "values": [0.5],
                "statuses": ["PRESENT"],
                "event_timestamps": [stamps.get(owners[name], "1970-01-01T00:00:00Z")],
            }
        )
    return {"metadata": {"feature_names": names}, "results": results}


def test_online_values_older_than_the_ttl_or_newer_than_the_turn_are_missing() -> None:
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    payload = answer(
        {
            "thread_mood_v1": "2026-03-01T09:59:59Z",  # 2 h 1 s old: TTL 2 h
            "thread_decision_v1": "2026-03-01T12:00:30Z",  # after the turn
            "stimulus_last_v1": "2026-03-01T11:00:00Z",  # fresh
            # stimulus_habituation_v1: never written
        }
    )
    result = parse_online(payload, at)
    assert result.stale == ["thread_mood_v1"]
    assert result.future == ["thread_decision_v1"]
    assert result.missing == ["stimulus_habituation_v1"]
    assert result.values["thread_mood_v1:valence_mean_20"] is None
    assert result.values["thread_decision_v1:cognition_rate_20"] is None
    assert result.values["stimulus_last_v1:last_valence"] == 0.5
    assert result.age_s["stimulus_last_v1"] == 3600.0
    # On-demand outputs go with the view they read; intensity needs only the request.
    assert result.values["stimulus_appraisal_v1:mood_congruence"] is None
    assert result.values["stimulus_appraisal_v1:seconds_since_last_similar"] == 0.5
    assert result.values["stimulus_appraisal_v1:affect_intensity"] == 0.5
    exactly_ttl = parse_online(answer({"thread_mood_v1": "2026-03-01T10:00:00Z"}), at)
    assert "thread_mood_v1" not in exactly_ttl.stale  # the bound is inclusive, as offline


# -- Feast's Redis layout, mirrored ------------------------------------------------------------


def test_entity_keys_and_timestamps_match_feast() -> None:
    from feast.infra.online_stores.helpers import _redis_key, _redis_key_prefix
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value
    from google.protobuf.timestamp_pb2 import Timestamp

    for value in ("thread-0007", "ü-kind", "x" * 128):
        key = EntityKey(join_keys=["thread_id"], entity_values=[Value(string_val=value)])
        assert online.entity_key("emily", "thread_id", value) == _redis_key("emily", key, 3)
    assert online.key_prefix("stimulus_kind") == _redis_key_prefix(["stimulus_kind"])
    for moment in (
        datetime(2026, 5, 1, 1, 2, 3, 456789, tzinfo=UTC),
        datetime(1969, 1, 1, tzinfo=UTC),
    ):
        stamp = Timestamp()
        stamp.FromDatetime(moment)
        assert online.parse_timestamp(stamp.SerializeToString()) == moment
    assert online.parse_timestamp(b"") is None


def test_redis_passwords_feast_cannot_parse_are_refused(tmp_path: Path) -> None:
    from emily.stack.features import redis_connection

    for password in ("a,b", "12345", "true"):
        settings = load_settings(state_dir=tmp_path, redis={"url": f"redis://:{password}@h:1/0"})
        with pytest.raises(ConfigError) as caught:
            redis_connection(settings)
        assert caught.value.field == "EMILY_FEATURES__REDIS_CONNECTION"
    settings = load_settings(
        state_dir=tmp_path,
        redis={"url": "rediss://user:s3cret-pw@cache.internal:6380/0"},
        features={"redis_db": 4},
    )
    assert redis_connection(settings) == (
        "cache.internal:6380,username=user,password=s3cret-pw,db=4,ssl=true"
    )


def test_settings_refuse_contradictions(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(state_dir=tmp_path, features={"auth": "oidc"})
    assert "oidc_discovery_url" in str(caught.value)
    with pytest.raises(ConfigError):
        load_settings(state_dir=tmp_path, features={"redis_type": "redis_cluster", "redis_db": 1})
