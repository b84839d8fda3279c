"""The CLI starts without the heavy libraries: `emily --help` and `emily status` must not pay
for matplotlib, MLflow, Feast, LangGraph or ONNX Runtime (each costs seconds to import).
Speed itself is measured by scripts/bench-cli-start.py (docs/benchmarks.md), not here."""

from __future__ import annotations

import subprocess
import sys

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
