"""The feature server as a stack service, the repository apply, and Feast's permission model
enforced by the real ``feast serve`` (OIDC against the stack's own issuer)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest

from emily.features import database
from emily.features.apply import FeatureDefinitionError, apply_objects, ensure_applied
from emily.stack.features import ENV_PG_PASSWORD, features_dsn
from tests.features.conftest import token, unique
from tests.fixtures.features import FeatureServer


def post(server: FeatureServer, path: str, body: dict[str, Any], bearer: str | None) -> int:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return httpx2.post(f"{server.url}{path}", json=body, headers=headers, timeout=60).status_code


def requests(thread: str) -> dict[str, tuple[str, dict[str, Any]]]:
    now = datetime.now(UTC).isoformat()
    return {
        "read": (
            "/get-online-features",
            {"features": ["thread_mood_v1:turn"], "entities": {"thread_id": [thread]}},
        ),
        "push": (
            "/push",
            {
                "push_source_name": "stimulus_push_v1",
                "to": "online",
                "df": {
                    "stimulus_kind": [thread],
                    "occurred_at": [now],
                    "created_at": [now],
                    "last_seen_epoch": [1.0],
                    "last_valence": [0.0],
                    "last_arousal": [0.0],
                    "last_dominance": [0.0],
                },
            },
        ),
        "materialize": (
            "/materialize",
            {
                "start_ts": "2020-01-01T00:00:00",
                "end_ts": "2020-01-02T00:00:00",
                "feature_views": ["stimulus_habituation_v1"],
            },
        ),
    }


def test_server_runs_on_loopback_without_secrets_in_its_config(
    feature_server: FeatureServer,
) -> None:
    record = feature_server.record
    assert record.url is not None and record.url.startswith("http://127.0.0.1:")
    assert record.details["auth"] == "local"
    text = Path(record.details["config"]).read_text(encoding="utf-8")
    password = psycopg.conninfo.conninfo_to_dict(features_dsn(feature_server.settings))["password"]
    assert str(password) not in text and f"${{{ENV_PG_PASSWORD}}}" in text
    assert '"cache_mode": "thread"' in text
    status = {s.name: s for s in feature_server.stack.status()}["features"]
    assert status.running and status.healthy


def test_server_was_started_without_the_unsigned_token_shortcut(
    feature_server: FeatureServer,
) -> None:
    import jwt

    # With INTRA_COMMUNICATION_BASE64 set, Feast accepts unsigned tokens naming its value.
    forged = jwt.encode({"preferred_username": "anything"}, key="", algorithm="none")
    path, body = requests(unique("t"))["read"]
    assert post(feature_server, path, body, forged) == 401
    environ = Path(f"/proc/{feature_server.record.pid}/environ").read_bytes().split(b"\0")
    assert not any(item.startswith(b"INTRA_COMMUNICATION_BASE64=") for item in environ)


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("none", {"read": 401, "push": 401, "materialize": 401}),
        ("garbage", {"read": 401, "push": 401, "materialize": 401}),
        ("expired", {"read": 401, "push": 401, "materialize": 401}),
        ("other key", {"read": 401, "push": 401, "materialize": 401}),
        ("wrong audience", {"read": 401, "push": 401, "materialize": 401}),
        ("no roles", {"read": 403, "push": 403, "materialize": 403}),
        ("reader", {"read": 200, "push": 403, "materialize": 403}),
        ("writer", {"read": 200, "push": 200, "materialize": 403}),
        ("admin", {"read": 200, "push": 200, "materialize": 200}),
    ],
)
def test_permissions_are_enforced(
    feature_server: FeatureServer, who: str, expected: dict[str, int]
) -> None:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    settings = feature_server.settings
    bearer: str | None
    if who == "none":
        bearer = None
    elif who == "garbage":
        bearer = "abc.def.ghi"
    elif who == "expired":
        bearer = token(settings, ["admin"], ttl_s=-120)
    elif who == "other key":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        bearer = token(settings, ["admin"], key_pem=pem)
    elif who == "wrong audience":
        claims = jwt.decode(token(settings, ["admin"]), options={"verify_signature": False})
        claims["aud"] = "someone-else"
        from emily.stack.features import OIDC_KEY_ID, oidc_key_path
        from emily.statefile import StateDir

        pem = oidc_key_path(StateDir(settings.state_dir)).read_bytes()
        bearer = jwt.encode(claims, pem, algorithm="RS256", headers={"kid": OIDC_KEY_ID})
    else:
        bearer = token(settings, [] if who == "no roles" else [who])
    got = {
        name: post(feature_server, path, body, bearer)
        for name, (path, body) in requests(unique("perm")).items()
    }
    assert got == expected


def test_apply_is_idempotent_and_follows_definition_changes(
    feature_server: FeatureServer,
) -> None:
    settings = feature_server.settings
    first = database.stored_fingerprint(settings)
    again = ensure_applied(settings)
    assert not again.applied and again.fingerprint == first
    assert "nothing changed" in again.summary()
    # A setting that shapes the repository changes the fingerprint: applied on the next up.
    changed = settings.model_copy(
        update={"features": settings.features.model_copy(update={"key_ttl_s": 172_801})}
    )
    try:
        result = ensure_applied(changed)
        assert result.applied and (result.created, result.updated, result.deleted) == ([], [], [])
        assert database.stored_fingerprint(settings) == result.fingerprint != first
    finally:
        assert ensure_applied(settings).applied
    assert database.stored_fingerprint(settings) == first


def test_a_schema_change_under_the_same_name_is_refused(
    feature_server: FeatureServer, fstore: Any
) -> None:
    from feast import Field
    from feast.types import Float64

    from emily.features.repo import build

    objects = build(feature_server.settings.features.db_schema)
    view = next(o for o in objects if getattr(o, "name", "") == "stimulus_last_v1")
    view.features = [*view.features, Field(name="last_novelty", dtype=Float64)]
    with pytest.raises(FeatureDefinitionError) as caught:
        apply_objects(fstore, feature_server.settings, objects)
    assert caught.value.field == "stimulus_last_v1" and "_v2" in (caught.value.hint or "")
    stored = fstore.get_feature_view("stimulus_last_v1")
    assert "last_novelty" not in {f.name for f in stored.features}


def test_the_feature_role_reads_episodes_and_cannot_change_them(
    feature_server: FeatureServer,
) -> None:
    with psycopg.connect(features_dsn(feature_server.settings)) as conn:
        assert conn.execute("SELECT count(*) FROM public.episodic_memories").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM public.episodic_memories")
    mode = os.stat(feature_server.record.details["config"]).st_mode & 0o777
    assert mode == 0o600


def test_the_registry_survives_a_postgres_restart(feature_server: FeatureServer) -> None:
    """The SQL registry lives in our PostgreSQL: after a real restart of that server (by our stack
    code), a new process-side store reads every object back without an apply, the running
    `feast serve` keeps serving from it, and `emily up`'s apply finds nothing to change."""
    from emily.features import schema
    from emily.features.store import open_store
    from tests.fixtures.features import _wait_for_registry

    settings, stack = feature_server.settings, feature_server.stack
    before = stack.record("postgres")
    assert before is not None
    try:
        stack.down(["postgres"])
    finally:
        stack.up(["postgres"])  # the session's feature tests share this server
    after = stack.record("postgres")
    assert after is not None and after.pid != before.pid

    store = open_store(settings)
    project = settings.features.project
    views = {v.name for v in store.registry.list_feature_views(project, allow_cache=False)}
    assert {v.name for v in schema.VIEWS} <= views
    services = {s.name for s in store.registry.list_feature_services(project, allow_cache=False)}
    assert services == {s.name for s in schema.SERVICES}
    _wait_for_registry(settings, feature_server.url)
    assert ensure_applied(settings).summary() == "feature repository up to date (nothing changed)"


def test_serve_outside_the_local_stack_refuses_the_local_issuer(tmp_path: Path) -> None:
    """`emily features serve` (the NixOS unit's command) runs Feast with the local stack's
    serving flags, and refuses `features.auth = local`, whose issuer only `emily up` runs."""
    from typer.testing import CliRunner

    from emily.cli.app import app
    from emily.stack.features import serve_arguments
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, features={"auth": "local", "max_requests": 0})
    args = serve_arguments(settings, tmp_path / "fs.yaml", "127.0.0.1", 7000)
    assert args[:3] == ["-f", str(tmp_path / "fs.yaml"), "serve"]
    assert args[args.index("--max-requests") + 1] == "0" and "--no-access-log" in args
    result = CliRunner(env={"EMILY_FEATURES__AUTH": "local"}).invoke(
        app, ["--state-dir", str(tmp_path), "features", "serve", "--port", "7000"]
    )
    assert result.exit_code == 1
    assert "features.auth" in result.stderr and "emily up" in result.stderr
    assert not (tmp_path / "feature_store.yaml").exists()
