"""`emily memory bench` end to end on a fresh Typer app: JSON and PNG written, errors typed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from typer.testing import CliRunner

from emily.cli import memory_bench_cmds
from emily.cli.context import EmilyGroup, sub_app
from emily.config import Settings
from emily.stack.manager import Stack


def _app(settings: Settings) -> typer.Typer:
    root = typer.Typer(cls=EmilyGroup)
    memory = sub_app("memory")
    memory_bench_cmds.add_to(memory)
    root.add_typer(memory, name="memory")

    @root.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = settings

    return root


def test_cli_writes_json_and_png(
    stack: Stack,
    settings: Settings,
    matrices: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    base, queries = matrices
    np.save(tmp_path / "b.npy", base.astype(np.float16))
    np.save(tmp_path / "q.npy", queries)
    out = tmp_path / "out" / "report.json"
    result = CliRunner().invoke(
        _app(settings),
        [
            "memory",
            "bench",
            "--base",
            str(tmp_path / "b.npy"),
            "--queries",
            str(tmp_path / "q.npy"),
            "--metric",
            "l2",
            "--k",
            "5",
            "--ef",
            "40",
            "--clients",
            "2",
            "--engines",
            "pgvector-hnsw,pgvector-exact,faiss",
            "--queries-limit",
            "20",
            "--exact-queries",
            "10",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert (doc["n"], doc["dim"], doc["k"], doc["queries"]) == (2000, 32, 5, 20)
    assert doc["base_file"] == str(tmp_path / "b.npy")
    assert {r["engine"] for r in doc["results"]} == {"pgvector-hnsw", "pgvector-exact", "faiss"}
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "pgvector-hnsw" in result.output and "wrote" in result.output


def test_cli_reports_typed_errors(settings: Settings, tmp_path: Path) -> None:
    np.save(tmp_path / "b.npy", np.ones((20, 4), dtype=np.float32))
    flat = tmp_path / "q.npy"
    np.save(flat, np.ones(4, dtype=np.float32))
    common = ["memory", "bench", "--base", str(tmp_path / "b.npy"), "--json", "x.json"]
    runner = CliRunner()
    result = runner.invoke(_app(settings), [*common, "--queries", str(flat)])
    assert result.exit_code == 1
    assert str(flat) in result.output and "2-D" in result.output
    np.save(flat, np.ones((3, 4), dtype=np.float32))
    for option, value in [("--ef", "10,x"), ("--clients", ","), ("--queries-limit", "0")]:
        result = runner.invoke(_app(settings), [*common, "--queries", str(flat), option, value])
        assert result.exit_code == 1, (option, result.output)
        assert option in result.output
