"""One HTTP client library: the inference gateway and the embedders use ``httpx2`` (what the
``openai`` SDK uses), never ``httpx`` (a dev-only dependency, for FastAPI's TestClient)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PYTHON = Path(__file__).resolve().parents[2]
AREA = [
    PYTHON / "src/emily/inference",
    PYTHON / "src/emily/memory/embedding",
    PYTHON / "src/emily/cli/infer_cmds.py",
    PYTHON / "src/emily/cli/doctor_cmds.py",
    PYTHON / "tests/inference",
    PYTHON / "tests/embedding",
]


def httpx_imports(source: str) -> list[int]:
    """Lines importing ``httpx`` (``httpx2`` is another top-level name and is fine)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if any(name.split(".")[0] == "httpx" for name in names):
            lines.append(node.lineno)
    return lines


def _files() -> list[Path]:
    return sorted(f for p in AREA for f in ([p] if p.is_file() else p.rglob("*.py")))


def test_no_module_imports_httpx() -> None:
    files = _files()
    assert len(files) > 20  # the walk found the area
    found = {str(f.relative_to(PYTHON)): httpx_imports(f.read_text()) for f in files}
    assert {name: lines for name, lines in found.items() if lines} == {}


def test_the_checker_sees_httpx_but_not_httpx2() -> None:
    assert httpx_imports("import httpx\nimport httpx2\nfrom httpx import Client") == [1, 3]
    assert httpx_imports("import httpx2\nfrom httpx2 import AsyncClient\nimport httpx_sse") == []


def test_clients_load_httpx2_and_not_httpx() -> None:
    code = (
        "import sys\n"
        "import emily.inference.client, emily.inference.bench\n"
        "import emily.memory.embedding.openai_compat, emily.memory.embedding.factory\n"
        "print('httpx' in sys.modules, 'httpx2' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.split() == ["False", "True"]
