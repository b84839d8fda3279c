"""Sweeping one pgvector engine (HNSW over every ef and client count, or the exact scan over
the client counts) on a loaded scratch database; shared by the tuned and the stock driver."""

from __future__ import annotations

from collections.abc import Callable

from emily.memory.bench import pg
from emily.memory.bench.defaults import Engine
from emily.memory.bench.harness import Client, measure
from emily.memory.bench.models import EngineBuild
from emily.memory.bench.sweep import Sweep

WARMUP_QUERIES = 200


def _factory(
    dsn: str, statement: bytes, oid: int, encoded: list[bytes], session: dict[str, str]
) -> Callable[[], Client]:
    return lambda: pg.PgClient(dsn, statement, oid, encoded, session)


def sweep_pg(
    run: Sweep,
    engine: Engine,
    dsn: str,
    layout: pg.Layout,
    rerank: int | None,
    build: EngineBuild,
    stats: bool,
) -> None:
    dim = run.base.shape[1]
    statement = pg.query_sql(layout, dim, run.k, rerank)
    statement_bytes = pg.render(dsn, statement)
    oid = pg.type_oid(dsn, layout.storage)
    encoded = pg.encode(run.queries, layout.storage)
    server_stats = (lambda: pg.statement_stats(dsn)) if stats else None
    if engine == "pgvector-exact":
        session = {"enable_indexscan": "off"}
        count = min(run.exact_queries, len(run.queries))
        for clients in run.clients:
            factory = _factory(dsn, statement_bytes, oid, encoded, session)
            run.point(engine, None, clients, factory, count, None, server_stats)
    else:
        # On small tables the planner prefers a sequential scan; an HNSW engine must use HNSW.
        warm = {"enable_seqscan": "off", "hnsw.ef_search": str(max(run.efs))}
        run.steps.phase(f"{engine} warm-up")
        measure(
            _factory(dsn, statement_bytes, oid, encoded, warm),
            min(WARMUP_QUERIES, len(run.queries)),
            1,
            run.k,
        )
        for ef in run.efs:
            for clients in run.clients:
                session = {**warm, "hnsw.ef_search": str(ef)}
                factory = _factory(dsn, statement_bytes, oid, encoded, session)
                run.point(engine, ef, clients, factory, len(run.queries), rerank, server_stats)
        session = {**warm, "hnsw.ef_search": str(run.chosen_ef(engine))}
    build.explain = pg.explain(dsn, statement, encoded[0], oid, session)
    run.builds.append(build)
