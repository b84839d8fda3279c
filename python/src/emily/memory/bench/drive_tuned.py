"""Driver: pgvector-hnsw (and pgvector-exact) on the stack's own, tuned server."""

from __future__ import annotations

from emily.config import Settings
from emily.locator import postgres_admin_dsn
from emily.memory.bench import pg
from emily.memory.bench.defaults import Engine, Quantization
from emily.memory.bench.models import EngineBuild
from emily.memory.bench.pg_sweep import sweep_pg
from emily.memory.bench.sweep import Sweep

SERVER = "stack (tuned: emily.conf)"


def run_tuned(
    run: Sweep,
    settings: Settings,
    engines: tuple[Engine, ...],
    quantization: Quantization,
    rerank: int | None,
    m: int,
    ef_construction: int,
) -> None:
    storage: pg.Storage = "vector" if quantization == "vector" else "halfvec"
    layout = pg.Layout(storage, run.metric, cosine_as_ip=True, binary=quantization == "binary")
    dim = run.base.shape[1]
    with pg.scratch_database(postgres_admin_dsn(settings), "tuned") as dsn:
        stats = pg.try_extension(dsn, "pg_stat_statements")
        can_prewarm = pg.try_extension(dsn, "pg_prewarm")
        run.steps.phase("pgvector: loading (binary COPY)")
        load_seconds = pg.load(dsn, run.base, storage)
        server = pg.server_settings(dsn)
        if "pgvector-hnsw" in engines:
            run.steps.phase("pgvector-hnsw: building HNSW")
            seconds, size = pg.build_index(dsn, layout, dim, m, ef_construction)
            if can_prewarm:
                pg.prewarm(dsn)
            build = EngineBuild(
                engine="pgvector-hnsw",
                storage=storage,
                opclass=layout.opclass,
                distance=layout.distance,
                m=m,
                ef_construction=ef_construction,
                load_seconds=load_seconds,
                build_seconds=seconds,
                index_bytes=size,
                table_bytes=pg.relation_bytes(dsn),
                server=SERVER,
                server_settings=server,
            )
            sweep_pg(run, "pgvector-hnsw", dsn, layout, rerank, build, stats)
        if "pgvector-exact" in engines:
            exact_layout = pg.Layout(storage, run.metric, cosine_as_ip=True)
            build = EngineBuild(
                engine="pgvector-exact",
                storage=storage,
                distance=exact_layout.distance + " (sequential scan)",
                load_seconds=load_seconds,
                table_bytes=pg.relation_bytes(dsn),
                server=SERVER,
                server_settings=server,
            )
            sweep_pg(run, "pgvector-exact", dsn, exact_layout, None, build, stats)
