"""Helpers of the feature-store tests: episodes written straight into the offline store (the
episodes table), the in-process store, online reads and tokens."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pytest

from emily.config import Settings
from emily.features.tokens import mint_local
from emily.locator import postgres_admin_dsn
from tests.fixtures.features import FeatureServer


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def insert_episodes(settings: Settings, items: Sequence[dict[str, Any]]) -> list[int]:
    """Episodes as the agent stores them (``at``, ``vad``, context keys), in one transaction."""
    import psycopg

    with psycopg.connect(postgres_admin_dsn(settings)) as conn, conn.transaction():
        ids = []
        for item in items:
            at: datetime = item["at"]
            conn.execute("SELECT public.emily_ensure_partition(%s)", (at.date().replace(day=1),))
            context = {
                "thread_id": item.get("thread"),
                "source": item.get("kind", "user"),
                "turn": item.get("turn", 1),
                "layer": item.get("layer", "affect"),
                "degraded": item.get("degraded", False),
                "policy": "rest",
                "outcome": "calm",
            }
            if "confidence" in item:
                context["confidence"] = item["confidence"]
            context = {k: v for k, v in context.items() if v is not None}
            vad = item.get("vad", (0.0, 0.0, 0.0))
            row = conn.execute(
                "INSERT INTO public.episodic_memories (occurred_at, content, affect, context) "
                "VALUES (%s, %s, %s::vector, %s::jsonb) RETURNING id",
                (
                    at,
                    item.get("text", "something happened"),
                    "[" + ",".join(repr(float(x)) for x in vad) + "]",
                    json.dumps(context),
                ),
            ).fetchone()
            assert row is not None
            ids.append(int(row[0]))
    return ids


def token(settings: Settings, roles: list[str], **kwargs: Any) -> str:
    return mint_local(settings, roles, subject="tests", **kwargs)


@pytest.fixture(scope="session")
def fstore(feature_server: FeatureServer) -> Iterator[Any]:
    """The in-process Feast store on the feature stack."""
    from emily.features.store import open_store

    yield open_store(feature_server.settings)


def online_row(store: Any, view: str, key: str, value: str) -> dict[str, Any]:
    """The view's online values of one entity through the SDK (no freshness check)."""
    from emily.features.schema import view as view_def

    spec = view_def(view)
    answer = store.get_online_features(features=spec.refs(), entity_rows=[{key: value}]).to_dict()
    return {name: answer[name][0] for name in spec.feature_names}
