"""``emily agents bench --load N``: N concurrent ``POST /v1/episodes`` against the real service
(uvicorn on a loopback port, the configured stack behind it), then a check of every answer
against the episodes actually stored.

What it reports: the answers by status; latency by status; the loop latency of admitted turns
against the loop deadline; and the two counts that must be zero: acknowledged turns without
their row, and rows behind an answer that was not 200. Turn numbers must be gapless per thread.
"""

from __future__ import annotations

import asyncio
import os
import platform
import secrets
import socket
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import httpx2
import numpy as np
import psycopg
from psycopg import sql
from pydantic import SecretStr

from emily.agents.bench import SCRIPT
from emily.agents.loop import turn_slots
from emily.config import Settings
from emily.locator import postgres_dsn
from emily.memory.migrations import TABLE


@dataclass(frozen=True)
class Answer:
    thread_id: str
    status: int
    seconds: float
    turn: int | None = None
    episode_id: int | None = None
    loop_ms: float | None = None
    retry_after: str | None = None
    stored_episode: int | None = None  # what a refusal says it left stored


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "n": len(values),
        "p50": round(float(np.percentile(arr, 50)), 3),
        "p95": round(float(np.percentile(arr, 95)), 3),
        "p99": round(float(np.percentile(arr, 99)), 3),
        "max": round(float(arr.max()), 3),
    }


async def _post(client: httpx2.AsyncClient, thread_id: str, text: str) -> Answer:
    started = time.perf_counter()
    try:
        response = await client.post(
            "/v1/episodes", json={"thread_id": thread_id, "stimulus": {"text": text}}
        )
    except httpx2.HTTPError:
        return Answer(thread_id, 0, time.perf_counter() - started)
    seconds = time.perf_counter() - started
    body: dict[str, Any] = response.json() if response.content else {}
    if response.status_code == 200:
        return Answer(
            thread_id,
            200,
            seconds,
            turn=body["turn"],
            episode_id=body["episode_id"],
            loop_ms=body["latency_ms"],
        )
    stored = body.get("stored") or {}
    return Answer(
        thread_id,
        response.status_code,
        seconds,
        retry_after=response.headers.get("retry-after"),
        stored_episode=stored.get("episode_id"),
    )


def stored_rows(settings: Settings, prefix: str) -> list[tuple[int, str, int]]:
    """``(id, thread_id, turn)`` of every stored episode of threads starting with ``prefix``."""
    query = sql.SQL(
        "SELECT id, context->>'thread_id', (context->>'turn')::int FROM {} "
        "WHERE context->>'thread_id' LIKE %s"
    ).format(sql.Identifier(TABLE))
    with psycopg.connect(postgres_dsn(settings), connect_timeout=10) as conn:
        rows = conn.execute(query, (prefix + "%",)).fetchall()
    return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]


def check(answers: list[Answer], rows: list[tuple[int, str, int]]) -> dict[str, Any]:
    """Answers against stored rows: what must be zero, and whether turns are gapless."""
    by_id = {row[0]: row for row in rows}
    acked = [a for a in answers if a.status == 200]
    acked_ids = {a.episode_id for a in acked}
    turns: dict[str, list[int]] = defaultdict(list)
    for a in acked:
        if a.turn is not None:
            turns[a.thread_id].append(a.turn)
    gapless = all(sorted(t) == list(range(1, len(t) + 1)) for t in turns.values())
    return {
        "acknowledged_without_row": sum(
            1
            for a in acked
            if a.episode_id is None
            or a.episode_id not in by_id
            or by_id[a.episode_id][1:] != (a.thread_id, a.turn)
        ),
        "rows_behind_failed_answers": sum(1 for row in rows if row[0] not in acked_ids),
        "turns_gapless_per_thread": gapless,
    }


async def run_load(
    settings: Settings, n: int, *, threads: int | None = None, timeout_s: float = 600.0
) -> dict[str, Any]:
    """``n`` requests at once over ``threads`` threads (default: one thread per request)."""
    threads = threads or n
    token = secrets.token_urlsafe(24)
    agents = settings.agents.model_copy(update={"api_token": SecretStr(token)})
    served = settings.model_copy(update={"agents": agents})
    import uvicorn

    from emily.agents.api import create_app

    app = create_app(served)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, access_log=False, backlog=max(2048, 2 * n))
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    prefix = f"load-{uuid.uuid4().hex[:8]}-"
    try:
        while not server.started:
            if serving.done():
                serving.result()  # the lifespan failed: raise its error
            await asyncio.sleep(0.05)
        limits = httpx2.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx2.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            limits=limits,
        ) as client:
            started = time.perf_counter()
            answers = await asyncio.gather(
                *(
                    _post(client, f"{prefix}{i % threads}", SCRIPT[i % len(SCRIPT)])
                    for i in range(n)
                )
            )
            wall_s = time.perf_counter() - started
    finally:
        server.should_exit = True
        await serving
        sock.close()
    rows = await asyncio.to_thread(stored_rows, settings, prefix)
    statuses = Counter(a.status for a in answers)
    deadline_ms = settings.agents.loop_deadline_s * 1000
    admitted = [a.loop_ms for a in answers if a.loop_ms is not None]
    loop = _percentiles(admitted)
    slots = turn_slots(settings)
    waiting = settings.agents.max_turns_waiting
    report: dict[str, Any] = {
        "requests": n,
        "threads": threads,
        "wall_s": round(wall_s, 3),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "cognition_enabled": settings.agents.cognition_enabled,
        "limits": {
            "max_turns_in_flight": slots,
            "max_turns_waiting": slots if waiting is None else waiting,
            "thread_queue": settings.agents.thread_queue,
            "loop_deadline_ms": deadline_ms,
        },
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "refusals_with_retry_after": sum(
            1 for a in answers if a.status in (409, 429, 503) and a.retry_after
        ),
        "latency_s_by_status": {
            str(code): _percentiles([a.seconds for a in answers if a.status == code])
            for code in sorted(statuses)
        },
        "admitted_loop_ms": loop,
        "admitted_p99_over_deadline_ms": (
            round(loop["p99"] - deadline_ms, 3) if admitted else None
        ),
        "rows": len(rows),
        **check(answers, rows),
    }
    return report
