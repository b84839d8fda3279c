"""Imports run one way: lower layers never import higher ones (docs/architecture.md).

Checked on the source with ``ast`` (every import, also those inside functions and under
``TYPE_CHECKING``), so it costs no import of the package. The checker itself is tested on
synthetic modules so a rule that silently stopped working would fail here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. Every `emily.<pkg>.settings` module belongs to the base layer: config.py
# composes them, so they must be leaves that import nothing above the base.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "emily",
        "emily.errors",
        "emily.paths",
        "emily.config",
        "emily.settings_doc",
        "emily.statefile",
        "emily.locator",
        "emily.jsonio",
        "emily.ui",
    ),
    ("emily.telemetry",),
    ("emily.stack",),
    ("emily.memory", "emily.inference", "emily.drift"),
    ("emily.features",),
    ("emily.mlops",),
    ("emily.agents",),
    ("emily.demo", "emily.provision"),
    ("emily.cli",),
)
SETTINGS_MAY_IMPORT = ("emily.errors", "emily.paths")


def layer_of(module: str) -> int:
    """The layer index of a module (longest matching prefix)."""
    if module.endswith(".settings") and module.count(".") == 2:
        return 0
    best, length = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "emily" and module.startswith(prefix + "."))
            if matches and len(prefix) > length:
                best, length = index, len(prefix)
    if best < 0 and module.startswith("emily."):
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")
    return max(best, 0)


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``emily`` import in ``source``."""
    found: list[tuple[int, str]] = []
    package = module if module.endswith("__init__") else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("emily")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base == "emily":
                # `from emily import locator` names a module; `from emily import __version__` not.
                found += [(node.lineno, f"emily.{a.name}") for a in node.names if a.name.islower()]
                found.append((node.lineno, "emily"))
            elif base.startswith("emily."):
                found.append((node.lineno, base))
    return found


def violations(source: str, module: str) -> list[str]:
    own = layer_of(module)
    problems = []
    for line, target in imported_modules(source, module):
        if target.startswith("emily.") and target.count(".") == 1 and target[6:] == "__version__":
            continue
        if module.endswith(".settings") and module.count(".") == 2:
            if not (target == "emily" or target in SETTINGS_MAY_IMPORT):
                problems.append(f"{module}:{line} settings module imports {target}")
            continue
        if layer_of(target) > own:
            problems.append(f"{module}:{line} imports {target} (layer {layer_of(target)} > {own})")
    return problems


def source_modules() -> list[tuple[str, Path]]:
    result = []
    for path in sorted((SRC / "emily").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        result.append((name, path))
    return result


def test_imports_run_one_way() -> None:
    problems = [
        problem
        for name, path in source_modules()
        for problem in violations(path.read_text(encoding="utf-8"), name)
    ]
    assert problems == []


def test_every_module_has_a_layer() -> None:
    for name, _ in source_modules():
        layer_of(name)


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        ("emily.memory.store", "from emily.cli.context import settings_of", True),
        ("emily.memory.store", "def f():\n    from emily.agents.loop import Agent", True),
        ("emily.stack.llm", "import emily.inference.client", True),
        ("emily.telemetry.tracing", "from emily.stack.mlflow import healthy", True),
        ("emily.config", "from emily.memory.store import MemoryStore", True),
        ("emily.agents.settings", "from emily.config import Settings", True),
        ("emily.memory.settings", "from emily.errors import ConfigError", False),
        ("emily.config", "from emily.memory.settings import DatabaseSettings", False),
        ("emily.agents.graph", "from emily.memory.store import MemoryStore", False),
        ("emily.cli.app", "from emily.cli import memory_cmds", False),
        ("emily.memory.store", "from . import search_sql", False),
        ("emily.memory.store", "from ..agents import loop", True),
        ("emily.locator", "from emily import stack", True),
    ],
)
def test_checker_flags_what_breaks_the_rule(module: str, source: str, broken: bool) -> None:
    assert bool(violations(source, module)) is broken


def test_unknown_package_must_be_placed() -> None:
    with pytest.raises(AssertionError, match="no layer"):
        layer_of("emily.somethingnew")
