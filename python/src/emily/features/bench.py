"""``emily features bench``: online read latency by path and concurrency, and materialization
throughput, on the running stack (``emily up`` is enough).

Paths (one entity of each kind, the features perceive reads):

* ``sdk`` — in-process ``get_online_features`` with the feature service ``agent_perception_v1``
  (the service object fetched once: fetching it by name is a registry round trip per call);
* ``sdk-odfv`` — the same plus the python-mode on-demand view (``agent_perception_odfv_v1``);
* ``http`` — ``POST /get-online-features`` on the stack's feature server, exactly the agent's
  request (explicit references incl. the on-demand outputs, a bearer token, keep-alive);
* ``redis`` — the floor: ``HGETALL`` of the same two entity hashes in one pipeline (redis-py).

Each at concurrency 1 and 4 (threads, each with its own connection), for ``seconds`` each after a
warm-up, giving p50/p95/p99/max and QPS. The bench entities (``bench-thread``, ``bench-kind``) are
written before and deleted after. Materialization: a separate Feast project (``<project>_bench``)
over a 100k-row table of distinct entities in the features schema (the worst case: every row is
an online write), materialized once, then removed with its online rows and registry entries.
A cProfile of the SDK path says what bounds it.
"""

from __future__ import annotations

import contextlib
import cProfile
import json
import math
import os
import platform
import pstats
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg import sql

from emily.features import online, schema
from emily.memory.connect import connect
from emily.stack.features import features_dsn

if TYPE_CHECKING:
    from feast import FeatureStore

    from emily.config import Settings

THREAD_ID = "bench-thread"
KIND = "bench-kind"
BENCH_TABLE = "bench_wide_v1"


@dataclass(frozen=True)
class Options:
    seconds: float = 5.0
    min_requests: int = 200
    warmup: int = 30
    materialize_rows: int = 100_000
    concurrency: tuple[int, ...] = (1, 4)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    k = (len(ordered) - 1) * q / 100.0
    low = math.floor(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def measure(
    make_call: Callable[[], Callable[[], None]], concurrency: int, options: Options
) -> dict[str, float]:
    """Latencies (ms) of ``concurrency`` threads calling for ``options.seconds`` each."""
    samples: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(concurrency + 1)

    def worker() -> None:
        try:
            call = make_call()
            for _ in range(options.warmup):
                call()
        except BaseException as exc:  # reported below, not swallowed
            errors.append(exc)
            barrier.abort()
            return
        local: list[float] = []
        barrier.wait()
        end = time.perf_counter() + options.seconds
        while time.perf_counter() < end or len(local) < options.min_requests // concurrency:
            began = time.perf_counter()
            try:
                call()
            except BaseException as exc:
                errors.append(exc)
                break
            local.append((time.perf_counter() - began) * 1000)
        with lock:
            samples.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    if errors:
        raise errors[0]
    return {
        "requests": len(samples),
        "p50_ms": round(percentile(samples, 50), 3),
        "p95_ms": round(percentile(samples, 95), 3),
        "p99_ms": round(percentile(samples, 99), 3),
        "max_ms": round(max(samples), 3),
        "qps": round(len(samples) / wall, 1),
    }


def _request_data(at: datetime) -> dict[str, Any]:
    return {
        "stimulus_valence": 0.4,
        "stimulus_arousal": 0.2,
        "stimulus_dominance": -0.1,
        "request_epoch": at.timestamp(),
    }


def seed_bench_entities(store: FeatureStore, at: datetime) -> None:
    """One thread and one stimulus kind with every view written (push sources and a direct
    write for the batch view), stamped ``at``."""
    import pandas as pd

    thread = {
        "thread_id": [THREAD_ID],
        "occurred_at": [at],
        "created_at": [at],
        "valence_mean_20": [0.21],
        "arousal_mean_20": [0.05],
        "dominance_mean_20": [-0.02],
        "valence_var_20": [0.03],
        "arousal_var_20": [0.02],
        "dominance_var_20": [0.01],
        "degraded_rate_20": [0.1],
        "episodes_20": [20],
        "turn": [42],
        "appraisal_confidence": [0.61],
        "appraisal_confidence_mean_20": [0.58],
        "cognition_rate_20": [0.35],
    }
    kind = {
        "stimulus_kind": [KIND],
        "occurred_at": [at],
        "created_at": [at],
        "last_seen_epoch": [at.timestamp() - 60],
        "last_valence": [0.3],
        "last_arousal": [0.1],
        "last_dominance": [0.0],
    }
    habituation = {
        "stimulus_kind": [KIND],
        "occurred_at": [at],
        "created_at": [at],
        "exposures_1h": [7],
        "arousal_mean_1h": [0.12],
        "habituation": [0.5034],
    }
    store.push(schema.THREAD_PUSH.name, pd.DataFrame(thread))
    store.push(schema.STIMULUS_PUSH.name, pd.DataFrame(kind))
    store.write_to_online_store(schema.STIMULUS_HABITUATION.name, pd.DataFrame(habituation))


def remove_bench_entities(settings: Settings) -> None:
    conn = online.client(settings)
    try:
        conn.delete(
            online.entity_key(settings.features.project, "thread_id", THREAD_ID),
            online.entity_key(settings.features.project, "stimulus_kind", KIND),
        )
    finally:
        conn.close()


def _sdk_call(store: FeatureStore, service: Any, row: dict[str, Any]) -> Callable[[], None]:
    def call() -> None:
        store.get_online_features(features=service, entity_rows=[row]).to_dict()

    return call


def _http_call(url: str, token: str | None, at: datetime) -> Callable[[], Callable[[], None]]:
    import httpx2

    body = {
        "features": schema.perception_refs(),
        "entities": {
            "thread_id": [THREAD_ID],
            "stimulus_kind": [KIND],
            **{k: [v] for k, v in _request_data(at).items()},
        },
    }
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def make() -> Callable[[], None]:
        client = httpx2.Client(timeout=30.0)

        def call() -> None:
            response = client.post(f"{url}/get-online-features", json=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")

        return call

    return make


def _redis_call(settings: Settings) -> Callable[[], Callable[[], None]]:
    project = settings.features.project
    keys = [
        online.entity_key(project, "thread_id", THREAD_ID),
        online.entity_key(project, "stimulus_kind", KIND),
    ]

    def make() -> Callable[[], None]:
        conn = online.client(settings)

        def call() -> None:
            with conn.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(key)
                found = pipe.execute()
            if not all(found):
                raise RuntimeError("the bench entities are not in Redis")

        return call

    return make


def profile_sdk(call: Callable[[], None], calls: int = 300, top: int = 12) -> list[dict[str, Any]]:
    """Where the SDK path spends its time: the functions with the most cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        call()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = max(stats.total_tt, 1e-9)  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_, _, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(filename).name}:{line}:{name}",
                "cumulative_share": round(cumulative / total, 4),
                "own_share": round(own / total, 4),
                "cumulative_ms_per_call": round(cumulative / calls * 1000, 4),
            }
        )
    rows.sort(key=lambda r: r["cumulative_share"], reverse=True)
    # The top entries are the call itself and the loop; what follows is the breakdown.
    return rows[:top]


def materialize_throughput(settings: Settings, rows: int) -> dict[str, Any]:
    """Materialize ``rows`` distinct entities from PostgreSQL into Redis (a throw-away project)."""
    import pandas as pd  # noqa: F401 - Feast needs it; imported here to time Feast alone
    from feast import Entity, FeatureStore, FeatureView, Field, RepoConfig, ValueType
    from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
        PostgreSQLSource,
    )
    from feast.types import Float64

    from emily.stack.features import feast_config

    config = settings.features
    project = f"{config.project}_bench"
    table = sql.Identifier(config.db_schema, BENCH_TABLE)
    base = datetime(2026, 1, 5, tzinfo=UTC)
    with connect(features_dsn(settings), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        began = time.perf_counter()
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} AS SELECT 'bench-' || i AS bench_id, "
                "%s::timestamptz + make_interval(secs => i) AS occurred_at, "
                "%s::timestamptz + make_interval(secs => i) AS created_at, "
                "random() AS f1, random() AS f2, random() AS f3, random() AS f4, random() AS f5 "
                "FROM generate_series(1, %s) AS i"
            ).format(table),
            (base, base, rows),
        )
        seed_s = time.perf_counter() - began
    cfg = feast_config(settings)
    cfg["project"] = project
    store = FeatureStore(config=RepoConfig(**cfg))
    entity = Entity(name="bench_entity", join_keys=["bench_id"], value_type=ValueType.STRING)
    view = FeatureView(
        name=BENCH_TABLE,
        entities=[entity],
        ttl=timedelta(days=30),
        schema=[Field(name=f"f{i}", dtype=Float64) for i in range(1, 6)],
        source=PostgreSQLSource(
            name=f"{BENCH_TABLE}_source",
            table=f"{config.db_schema}.{BENCH_TABLE}",
            timestamp_field="occurred_at",
            created_timestamp_column="created_at",
        ),
        online=True,
    )
    try:
        store.apply([entity, view])
        store.refresh_registry()  # type: ignore[no-untyped-call]
        began = time.perf_counter()
        store.materialize(
            base - timedelta(seconds=1), base + timedelta(seconds=rows + 1), [view.name]
        )
        seconds = time.perf_counter() - began
        sample = store.get_online_features(
            features=[f"{BENCH_TABLE}:f1"], entity_rows=[{"bench_id": f"bench-{rows}"}]
        ).to_dict()
        written = sample["f1"][0] is not None
    finally:
        online_store: Any = store._get_provider().online_store
        online_store.delete_table(store.config, view)
        store.registry.delete_project(project)
        with connect(features_dsn(settings), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    return {
        "rows": rows,
        "distinct_entities": rows,
        "features_per_row": 5,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds, 1),
        "seed_table_s": round(seed_s, 3),
        "last_row_online": written,
        "pull_latest_features": True,
    }


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg_1_5_15": [round(x, 2) for x in load],
    }


def run(settings: Settings, options: Options | None = None) -> dict[str, Any]:
    """The whole benchmark (see the module docstring); returns the JSON document."""
    import importlib.metadata

    from emily.features.apply import ensure_applied
    from emily.features.store import open_store
    from emily.features.tokens import TokenSource
    from emily.locator import feature_server_url

    options = options or Options()
    ensure_applied(settings)
    store = open_store(settings)
    at = datetime.now(UTC) - timedelta(seconds=5)
    seed_bench_entities(store, at)
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    results: list[dict[str, Any]] = []
    try:
        plain = store.get_feature_service(schema.AGENT_SERVICE.name, allow_cache=True)
        with_odfv = store.get_feature_service(schema.AGENT_ODFV_SERVICE.name, allow_cache=True)
        row = {"thread_id": THREAD_ID, "stimulus_kind": KIND}
        odfv_row = {**row, **_request_data(at)}
        url = feature_server_url(settings)
        token = TokenSource(settings, ["reader"], subject="emily-bench")()
        paths: dict[str, Callable[[], Callable[[], None]]] = {
            "sdk": lambda: _sdk_call(store, plain, row),
            "sdk-odfv": lambda: _sdk_call(store, with_odfv, odfv_row),
            "http": _http_call(url, token, at),
            "redis": _redis_call(settings),
        }
        for path, make in paths.items():
            for concurrency in options.concurrency:
                stats = measure(make, concurrency, options)
                results.append({"path": path, "concurrency": concurrency, **stats})
        profile = profile_sdk(_sdk_call(store, plain, row))
        profile_odfv = profile_sdk(_sdk_call(store, with_odfv, odfv_row))
    finally:
        remove_bench_entities(settings)
    floor = {r["concurrency"]: r for r in results if r["path"] == "redis"}
    for result in results:
        base = floor[result["concurrency"]]
        result["p50_vs_redis"] = round(result["p50_ms"] / base["p50_ms"], 1)
        result["p99_vs_redis"] = round(result["p99_ms"] / base["p99_ms"], 1)
    mat = (
        materialize_throughput(settings, options.materialize_rows)
        if options.materialize_rows
        else None
    )
    return {
        "benchmark": "emily features bench",
        "started": started.isoformat(),
        "machine": {**machine(), "load_avg_before": [round(x, 2) for x in load_before]},
        "versions": {
            "feast": importlib.metadata.version("feast"),
            "redis-py": importlib.metadata.version("redis"),
        },
        "server": {
            "url": url,
            "auth": settings.features.auth,
            "workers": settings.features.workers,
            "max_requests": settings.features.max_requests,
            "cached_permissions": settings.features.cached_permissions,
        },
        "options": {
            "seconds": options.seconds,
            "min_requests": options.min_requests,
            "warmup": options.warmup,
        },
        "features_read": len(schema.perception_refs()),
        "results": results,
        "materialize": mat,
        "profile": {"sdk": profile, "sdk-odfv": profile_odfv},
    }


def write(document: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path
