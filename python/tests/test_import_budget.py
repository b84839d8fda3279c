"""The CLI starts without the heavy libraries: `emily --help` and `emily status` must not pay
for matplotlib, MLflow, Feast, LangGraph or ONNX Runtime (each costs seconds to import).
Speed itself is measured by scripts/bench-cli-start.py (docs/benchmarks.md), not here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = (
    "matplotlib",
    "mlflow",
    "feast",
    "langgraph",
    "onnxruntime",
    "faiss",
    "pandas",
    "sklearn",
    "dvc",
    "openai",
    "numpy",
)


def heavy_modules(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def modules_after(statement: str) -> list[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.split()


def test_cli_app_imports_nothing_heavy() -> None:
    assert heavy_modules(modules_after("import emily.cli.app")) == []


def test_status_command_imports_nothing_heavy() -> None:
    # What `emily status` imports beyond the app: the stack manager and its services.
    loaded = modules_after("import emily.cli.app, emily.stack.manager, emily.provision")
    assert heavy_modules(loaded) == []


def test_budget_check_sees_a_heavy_import() -> None:
    assert heavy_modules(modules_after("import emily.cli.app, numpy")) != []


def test_status_runs_without_the_command_groups_psycopg_or_structlog(tmp_path: Path) -> None:
    """`emily status` itself (run in-process over an empty state dir): the command groups are
    loaded only when named, PostgreSQL is probed with pg_isready, loggers bind on first use."""
    code = (
        "import sys\n"
        "from emily.cli.app import main\n"
        f"sys.argv = ['emily', '--state-dir', {str(tmp_path)!r}, 'status']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sys.modules), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = set(done.stderr.split())
    assert "emily.cli.app" in loaded and "emily.stack.manager" in loaded
    groups = {"emily.cli.memory_cmds", "emily.cli.mlops_cmds", "emily.cli.agents_cmds"}
    assert not groups & loaded
    assert not {m for m in loaded if m.split(".")[0] in ("psycopg", "structlog")}
    assert "http.server" not in loaded and heavy_modules(sorted(loaded)) == []
