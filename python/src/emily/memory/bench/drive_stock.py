"""Driver: pgvector-default, i.e. vector(dim), the canonical opclass, m=16/ef_construction=64,
on a stock PostgreSQL (initdb defaults) started for the run."""

from __future__ import annotations

from emily.config import Settings
from emily.memory.bench import pg
from emily.memory.bench.defaults import STOCK_EF_CONSTRUCTION, STOCK_M
from emily.memory.bench.models import EngineBuild
from emily.memory.bench.pg_sweep import sweep_pg
from emily.memory.bench.stock import stock_postgres
from emily.memory.bench.sweep import Sweep


def run_stock(run: Sweep, settings: Settings) -> None:
    layout = pg.Layout("vector", run.metric, cosine_as_ip=False)
    dim = run.base.shape[1]
    work_mem = settings.stack.postgres_maintenance_work_mem
    run.steps.phase("pgvector-default: starting stock PostgreSQL")
    with stock_postgres(settings) as admin_dsn, pg.scratch_database(admin_dsn, "stock") as dsn:
        run.steps.phase("pgvector-default: loading (binary COPY)")
        load_seconds = pg.load(dsn, run.base, "vector")
        run.steps.phase("pgvector-default: building HNSW")
        # Only the build gets the stack's maintenance_work_mem: with the stock 64MB a large
        # graph spills to disk and the reference build alone would take many minutes.
        seconds, size = pg.build_index(
            dsn, layout, dim, STOCK_M, STOCK_EF_CONSTRUCTION, maintenance_work_mem=work_mem
        )
        build = EngineBuild(
            engine="pgvector-default",
            storage="vector",
            opclass=layout.opclass,
            distance=layout.distance,
            m=STOCK_M,
            ef_construction=STOCK_EF_CONSTRUCTION,
            load_seconds=load_seconds,
            build_seconds=seconds,
            index_bytes=size,
            table_bytes=pg.relation_bytes(dsn),
            server="stock PostgreSQL (initdb defaults; build-only maintenance_work_mem "
            f"{work_mem})",
            server_settings=pg.server_settings(dsn),
        )
        sweep_pg(run, "pgvector-default", dsn, layout, None, build, stats=False)
