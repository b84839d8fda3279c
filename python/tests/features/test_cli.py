"""The CLI around the store: ``emily up``'s apply step, ``emily features ui`` and
``emily features bench`` (its shape and sanity, never its speed)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx2
from typer.testing import CliRunner

from emily.cli.app import app
from emily.provision import features_up
from tests.fixtures.features import FeatureServer


def test_up_applies_idempotently_and_keeps_the_running_server(
    feature_server: FeatureServer,
) -> None:
    state, line = features_up(feature_server.settings, feature_server.stack)
    assert line == "feature repository up to date (nothing changed)"
    assert state.services["features"].pid == feature_server.record.pid
    result = CliRunner().invoke(
        app, ["--state-dir", str(feature_server.settings.state_dir), "features", "apply"]
    )
    assert result.exit_code == 0 and "up to date" in result.stdout


def test_ui_serves_the_registry(feature_server: FeatureServer) -> None:
    url = f"http://127.0.0.1:{feature_server.ui_port}"
    deadline = time.monotonic() + 240
    projects: Any = None
    while time.monotonic() < deadline and feature_server.ui.poll() is None:
        try:
            response = httpx2.get(f"{url}/projects-list.json", timeout=5)
            if response.status_code == 200:
                projects = response.json()
                break
        except httpx2.HTTPError:
            pass
        time.sleep(1)
    assert projects is not None, "feast ui never answered"
    project = feature_server.settings.features.project
    assert project in [p["id"] for p in projects["projects"]]
    page = httpx2.get(url, timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()
    views = httpx2.get(f"{url}/api/v1/feature_views", params={"project": project}, timeout=30)
    assert views.status_code == 200 and "thread_mood_v1" in views.text


def test_bench_writes_every_path_and_concurrency(
    feature_server: FeatureServer, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app,
        [
            "--state-dir",
            str(feature_server.settings.state_dir),
            "features",
            "bench",
            "--json",
            str(out),
            "--seconds",
            "0.2",
            "--rows",
            "2000",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text(encoding="utf-8"))
    seen = {(r["path"], r["concurrency"]) for r in document["results"]}
    assert seen == {(p, c) for p in ("sdk", "sdk-odfv", "http", "redis") for c in (1, 4)}
    for row in document["results"]:
        assert row["requests"] > 0 and row["qps"] > 0
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
    mat = document["materialize"]
    assert mat["rows"] == 2000 and mat["last_row_online"] and mat["rows_per_s"] > 0
    assert document["profile"]["sdk"] and document["machine"]["cpus"]
    # The bench removes what it wrote: no bench entities, no bench project.
    from emily.features import online

    conn = online.client(feature_server.settings)
    try:
        key = online.entity_key(
            feature_server.settings.features.project, "thread_id", "bench-thread"
        )
        assert not conn.exists(key)
    finally:
        conn.close()
