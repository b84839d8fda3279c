"""The real-time path: agent turns read the thread's online features in perceive and push the
stored episode's rows in consolidate; pushes are validated whole; a slow, dead or blocked
feature store degrades the turn and never hangs it. Consistency: what the agent pushed equals
what the offline store (the episodes) materializes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from emily.agents.loop import Agent
from emily.agents.perception import Stimulus
from emily.cli.app import app
from emily.config import Settings
from emily.features import online, schema
from emily.features.client import FeatureClient, in_loop
from emily.features.offline import backfill
from emily.features.push import push_checked
from emily.features.validation import FeaturePushError
from emily.memory.store import MemoryStore
from tests.features.conftest import insert_episodes, online_row, unique
from tests.fixtures.features import FeatureServer


def variant(settings: Settings, **features: Any) -> Settings:
    return settings.model_copy(update={"features": settings.features.model_copy(update=features)})


@pytest.fixture(scope="module")
def embedder(feature_server: FeatureServer) -> Any:
    from emily.memory.embedding.factory import create_embedder

    MemoryStore(feature_server.settings).migrate()
    return create_embedder(feature_server.settings)


@contextlib.asynccontextmanager
async def agent_on(settings: Settings, embedder: Any) -> AsyncIterator[Agent]:
    agent = await Agent.open(settings, embedder=embedder, durable=False)
    try:
        yield agent
    finally:
        await agent.close()


def redis_of(feature_server: FeatureServer) -> Any:
    return online.client(feature_server.settings)


def exists(feature_server: FeatureServer, join_key: str, value: str) -> bool:
    conn = redis_of(feature_server)
    try:
        project = feature_server.settings.features.project
        return bool(conn.exists(online.entity_key(project, join_key, value)))
    finally:
        conn.close()


def test_turns_read_and_push_features_consistently_with_the_offline_store(
    feature_server: FeatureServer, embedder: Any, fstore: Any
) -> None:
    settings = feature_server.settings
    assert in_loop(settings)
    thread, kind = unique("rt"), unique("kind")
    texts = [
        "a friend brings a lovely gift",
        "a strange new sound in the dark",
        "danger! smoke and fire in the kitchen",
        "calm again, tea with my sister",
        "an unexpected message from a colleague",
    ]

    async def run() -> list[Any]:
        async with agent_on(settings, embedder) as agent:
            results = []
            for index, text in enumerate(texts):
                source = kind if index % 2 else "user"
                results.append(await agent.step(thread, Stimulus(text=text, source=source)))
            return results

    results = asyncio.run(run())
    assert all(not r.degraded for r in results), [r.degraded_reason for r in results]
    assert all(r.episode_id is not None for r in results)
    first, last = results[0], results[-1]
    # The first turn of a new thread finds no thread features; later ones find the pushed ones.
    assert first.features["thread_mood_v1:valence_mean_20"] is None
    assert "thread_mood_v1" in first.features_unavailable
    assert last.features["thread_mood_v1:episodes_20"] == 4
    assert last.features["thread_mood_v1:turn"] == 4
    assert last.features["stimulus_appraisal_v1:affect_intensity"] is not None
    assert last.features["stimulus_appraisal_v1:mood_congruence"] is not None
    # The kind was last seen two turns before the last one.
    assert last.features["stimulus_appraisal_v1:seconds_since_last_similar"] is not None

    pushed = {
        view: online_row(fstore, view, "thread_id", thread)
        for view in ("thread_mood_v1", "thread_decision_v1")
    }
    pushed["stimulus_last_v1"] = online_row(fstore, "stimulus_last_v1", "stimulus_kind", kind)
    assert pushed["thread_mood_v1"]["episodes_20"] == 5
    # Rebuild the online store from the offline store (the episodes) and compare.
    rebuilt = backfill(settings, since=datetime.now(UTC) - timedelta(hours=1), store=fstore)
    assert set(rebuilt.deleted) == {v.name for v in schema.VIEWS}
    for view, values in pushed.items():
        key, value = (
            ("stimulus_kind", kind) if view == "stimulus_last_v1" else ("thread_id", thread)
        )
        again = online_row(fstore, view, key, value)
        for name, number in values.items():
            if isinstance(number, float):
                assert again[name] == pytest.approx(number, rel=1e-9, abs=1e-12), (view, name)
            else:
                assert again[name] == number, (view, name)


class BlackHole:
    """A TCP port that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    try:
        yield hole
    finally:
        hole.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("failure", ["silent", "refused"])
def test_a_dead_or_silent_feature_server_degrades_the_turn(
    feature_server: FeatureServer, embedder: Any, black_hole: BlackHole, failure: str
) -> None:
    port = black_hole.port if failure == "silent" else closed_port()
    settings = variant(
        feature_server.settings,
        server_url=f"http://127.0.0.1:{port}",
        auth="none",
        read_deadline_s=0.3,
        push_deadline_s=0.3,
    )

    async def run() -> list[Any]:
        async with agent_on(settings, embedder) as agent:
            thread = unique("down")
            return [await agent.step(thread, Stimulus(text=t)) for t in ("hello", "again")]

    first, second = asyncio.run(run())
    for result in (first, second):
        assert result.degraded and result.episode_id is not None
        assert result.features == {}
    reason = first.degraded_reason or ""
    if failure == "silent":
        assert "features: read failed (TimeoutError: no answer within 0.30 s)" in reason
    else:
        assert "features: read failed (FeatureServerError" in reason
    assert "features: push failed" in reason


def test_a_blocked_online_store_degrades_the_turn(
    feature_server: FeatureServer, embedder: Any
) -> None:
    settings = variant(feature_server.settings, read_deadline_s=0.5, push_deadline_s=0.5)
    conn = redis_of(feature_server)

    async def run() -> Any:
        async with agent_on(settings, embedder) as agent:
            assert agent.deps.features is not None
            await agent.deps.features.warm_up()
            conn.client_pause(2500)  # every Redis client stalls, the feature server's too
            return await agent.step(unique("paused"), Stimulus(text="is anyone there?"))

    try:
        result = asyncio.run(run())
    finally:
        conn.client_unpause()
        conn.close()
    assert result.degraded and result.episode_id is not None
    assert "features: read failed (TimeoutError" in (result.degraded_reason or "")


def test_in_loop_follows_the_setting_and_what_the_stack_started(
    feature_server: FeatureServer, tmp_path: Any
) -> None:
    from tests.conftest import make_settings

    fresh = make_settings(tmp_path)
    assert not in_loop(fresh)  # never deployed here: turns do not ask
    assert in_loop(variant(fresh, in_loop="on"))
    assert not in_loop(variant(feature_server.settings, in_loop="off"))
    assert in_loop(feature_server.settings)


def kind_row(kind: str, at: datetime, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "stimulus_kind": kind,
        "occurred_at": at,
        "last_seen_epoch": at.timestamp(),
        "last_valence": 0.25,
        "last_arousal": 0.1,
        "last_dominance": -0.2,
    }
    row.update(changes)
    return row


@pytest.mark.parametrize(
    ("bad", "field", "row"),
    [
        ({"last_valence": "high"}, "last_valence", 2),
        ({"last_arousal": math.nan}, "last_arousal", 2),
        ({"occurred_at": "2026-01-01T00:00:00"}, "occurred_at", 2),
        ({"occurred_at": datetime.now(UTC) + timedelta(days=2)}, "occurred_at", 2),
        ({"habituation": 0.5}, "habituation", 2),
        ({"stimulus_kind": 7}, "stimulus_kind", 2),
    ],
)
def test_a_bad_push_writes_nothing(
    feature_server: FeatureServer, bad: dict[str, Any], field: str, row: int
) -> None:
    good, other = unique("ok"), unique("bad")
    now = datetime.now(UTC) - timedelta(seconds=5)

    async def push() -> None:
        async with FeatureClient.from_settings(feature_server.settings) as client:
            await client.push(
                "stimulus_push_v1", [kind_row(good, now), kind_row(other, now, **bad)]
            )

    with pytest.raises(FeaturePushError) as caught:
        asyncio.run(push())
    assert (caught.value.field, caught.value.row) == (field, row)
    # The valid first row was not sent either: the batch is refused whole.
    assert not exists(feature_server, "stimulus_kind", good)
    assert not exists(feature_server, "stimulus_kind", other)


def test_oversized_batches_and_unknown_entities_are_refused(
    feature_server: FeatureServer,
) -> None:
    settings = variant(feature_server.settings, push_max_rows=2)
    now = datetime.now(UTC) - timedelta(minutes=1)
    kinds = [unique("many") for _ in range(3)]
    stored = unique("stored")
    (episode,) = insert_episodes(settings, [{"thread": unique("t"), "kind": stored, "at": now}])
    assert episode > 0
    nobody = unique("nobody")

    async def run() -> int:
        async with FeatureClient.from_settings(settings) as client:
            with pytest.raises(FeaturePushError) as too_many:
                await client.push("stimulus_push_v1", [kind_row(k, now) for k in kinds])
            assert too_many.value.field == "rows" and "at most 2" in too_many.value.message
            with pytest.raises(FeaturePushError) as unknown:
                await push_checked(
                    settings,
                    client,
                    "stimulus_push_v1",
                    [kind_row(stored, now), kind_row(nobody, now)],
                )
            assert (unknown.value.field, unknown.value.row) == ("stimulus_kind", 2)
            assert "no stored episode" in unknown.value.message
            assert not exists(feature_server, "stimulus_kind", stored)
            return await push_checked(settings, client, "stimulus_push_v1", [kind_row(stored, now)])

    assert asyncio.run(run()) == 1
    assert not any(exists(feature_server, "stimulus_kind", k) for k in [*kinds, nobody])
    assert exists(feature_server, "stimulus_kind", stored)


def _jsonl(path: Path, rows: list[dict[str, Any]], *, extra: str = "") -> Path:
    lines = [json.dumps(r, default=lambda v: v.isoformat()) for r in rows]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def test_push_command_checks_the_whole_file_against_stored_episodes(
    feature_server: FeatureServer, tmp_path: Path
) -> None:
    """``emily features push`` is the producer of outside pushes: a row naming no stored episode,
    or a line that is not JSON, refuses the whole file by row and field; a clean file lands."""
    settings = feature_server.settings
    now = datetime.now(UTC) - timedelta(minutes=1)
    stored = unique("cli-stored")
    (episode,) = insert_episodes(settings, [{"thread": unique("t"), "kind": stored, "at": now}])
    assert episode > 0
    nobody = unique("cli-nobody")
    base = ["--state-dir", str(settings.state_dir), "features", "push", "stimulus_push_v1"]

    unknown = _jsonl(tmp_path / "unknown.jsonl", [kind_row(stored, now), kind_row(nobody, now)])
    result = CliRunner().invoke(app, [*base, str(unknown)])
    assert result.exit_code == 1
    assert "stimulus_kind" in result.stderr and "row 2" in result.stderr
    assert "no stored episode" in result.stderr
    broken = _jsonl(tmp_path / "broken.jsonl", [kind_row(stored, now)], extra="{not json\n")
    result = CliRunner().invoke(app, [*base, str(broken)])
    assert result.exit_code == 1 and "line" in result.stderr and "row 2" in result.stderr
    assert not exists(feature_server, "stimulus_kind", stored)

    clean = _jsonl(tmp_path / "clean.jsonl", [kind_row(stored, now)])
    result = CliRunner().invoke(app, [*base, str(clean)])
    assert result.exit_code == 0, result.stderr
    assert "pushed 1 row(s)" in result.stdout
    assert exists(feature_server, "stimulus_kind", stored)
    assert not exists(feature_server, "stimulus_kind", nobody)
