"""`emily memory bench` through the real stack: report shape, recall sanity, all modes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emily.config import Settings
from emily.memory.bench.models import BenchReport
from emily.memory.bench.runner import run_benchmark
from emily.stack.manager import Stack

from .conftest import DIM, NQ, N


def test_report_json_shape(f16_report: BenchReport) -> None:
    doc = json.loads(f16_report.model_dump_json())
    assert (doc["n"], doc["dim"], doc["k"]) == (N, DIM, 10)
    assert isinstance(doc["build_seconds"], float) and doc["build_seconds"] > 0
    assert isinstance(doc["index_bytes"], int) and doc["index_bytes"] > 0
    assert {r["engine"] for r in doc["results"]} == {
        "pgvector-hnsw",
        "pgvector-default",
        "pgvector-exact",
        "faiss",
    }
    for result in doc["results"]:
        assert set(result) >= {"engine", "ef", "clients", "recall", "qps", "p50_ms", "p99_ms"}
        assert 0.0 <= result["recall"] <= 1.0
        assert result["qps"] > 0
        assert 0 < result["p50_ms"] <= result["p99_ms"]
        assert result["clients"] in (1, 2)
        assert (result["ef"] is None) == (result["engine"] == "pgvector-exact")
    hnsw_points = [(r["ef"], r["clients"]) for r in doc["results"] if r["engine"] == "faiss"]
    assert sorted(hnsw_points) == [(10, 1), (10, 2), (200, 1), (200, 2)]
    assert doc["queries"] == NQ and doc["exact_queries"] == 40
    assert doc["best_at_target"]["pgvector-exact/1"] > 0
    assert set(doc["best_at_target"]) == {f"{r['engine']}/{r['clients']}" for r in doc["results"]}


def test_exact_scan_is_exact(f16_report: BenchReport) -> None:
    exact = [r for r in f16_report.results if r.engine == "pgvector-exact"]
    assert len(exact) == 2
    assert all(r.recall == 1.0 and r.queries == 40 for r in exact)


@pytest.mark.parametrize("engine", ["pgvector-hnsw", "pgvector-default", "faiss"])
def test_hnsw_with_large_ef_finds_the_neighbours(f16_report: BenchReport, engine: str) -> None:
    by_ef = {r.ef: r.recall for r in f16_report.results if r.engine == engine and r.clients == 1}
    assert by_ef[200] >= 0.97
    assert by_ef[200] >= by_ef[10]


def test_builds_describe_each_engine(f16_report: BenchReport) -> None:
    builds = {b.engine: b for b in f16_report.builds}
    assert set(builds) == {"pgvector-hnsw", "pgvector-default", "pgvector-exact", "faiss"}
    ours, stock = builds["pgvector-hnsw"], builds["pgvector-default"]
    assert (ours.m, ours.ef_construction, ours.opclass) == (24, 100, "halfvec_ip_ops")
    assert (stock.m, stock.ef_construction, stock.opclass) == (16, 64, "vector_cosine_ops")
    # The test stack runs 256MB shared_buffers; the stock instance initdb's 128MB.
    assert ours.server_settings["shared_buffers"] == "256MB"
    assert stock.server_settings["shared_buffers"] == "128MB"
    assert "pg_prewarm" in ours.server_settings["shared_preload_libraries"]
    assert ours.explain is not None and "Index Scan using bench_hnsw" in ours.explain
    assert builds["pgvector-exact"].explain is not None
    assert "Seq Scan" in builds["pgvector-exact"].explain
    assert builds["faiss"].index_bytes > 0 and builds["faiss"].build_seconds > 0
    ours_points = [r for r in f16_report.results if r.engine == "pgvector-hnsw"]
    assert all(r.server_mean_ms is not None and r.server_mean_ms > 0 for r in ours_points)
    assert f16_report.machine["cpus"]


def test_float32_l2_with_vector_storage(
    stack: Stack, settings: Settings, matrices: tuple[np.ndarray, np.ndarray]
) -> None:
    base, queries = matrices
    report = run_benchmark(
        settings,
        base * 10.0,
        queries[:50] * 10.0,
        metric="l2",
        efs=(100,),
        clients=(1,),
        quantization="vector",
        m=8,
        ef_construction=32,
        engines=["pgvector-hnsw", "pgvector-exact"],
    )
    builds = {b.engine: b for b in report.builds}
    assert builds["pgvector-hnsw"].opclass == "vector_l2_ops"
    assert builds["pgvector-hnsw"].storage == "vector"
    recalls = {r.engine: r.recall for r in report.results}
    assert recalls["pgvector-exact"] == 1.0
    assert recalls["pgvector-hnsw"] >= 0.95
    assert (report.m, report.ef_construction, report.queries) == (8, 32, 50)


def test_binary_quantization_improves_with_rerank(
    stack: Stack, settings: Settings, matrices: tuple[np.ndarray, np.ndarray]
) -> None:
    base, queries = matrices

    def recall(rerank: int | None) -> float:
        report = run_benchmark(
            settings,
            base,
            queries[:50],
            metric="cosine",
            efs=(200,),
            clients=(1,),
            quantization="binary",
            rerank=rerank,
            m=8,
            ef_construction=32,
            engines=["pgvector-hnsw"],
        )
        assert report.builds[0].opclass == "bit_hamming_ops"
        assert report.results[0].rerank == rerank
        return report.results[0].recall

    plain, reranked = recall(None), recall(150)
    assert reranked > plain
