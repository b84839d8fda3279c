"""Shared fixtures: a real local stack (PostgreSQL + pgvector, Redis) in a temporary state dir.

Subsystem fixtures (LLM server, MLflow, ...) live in ``tests/fixtures/`` and are loaded below.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emily.config import Settings, load_settings
from emily.locator import Endpoints, resolve_endpoints
from emily.stack.manager import Stack

# Tests must never read the developer's own config or secrets.
for _key in [k for k in os.environ if k.startswith("EMILY_")]:
    del os.environ[_key]
# Turns appraise with the word lists and the built-in prompt unless a test asks for the
# registry (tests/mlops/test_loop_models.py): most test stacks run no MLflow server, where
# the defaults would mark every turn degraded and import MLflow in every agent process.
os.environ["EMILY_AGENTS__APPRAISER"] = "words"
os.environ["EMILY_AGENTS__PROMPT_SOURCE"] = "builtin"

pytest_plugins: list[str] = [
    "tests.fixtures.llm",
    "tests.fixtures.mlflow",
    "tests.fixtures.features",
    "tests.fixtures.pipeline",
]


def make_settings(state_dir: Path, **overrides: object) -> Settings:
    """Settings for a test stack: small server memory so several stacks fit on a laptop."""
    stack = {
        "postgres_shared_buffers": "256MB",
        "postgres_maintenance_work_mem": "256MB",
        "start_timeout_s": 90,
    }
    stack.update(overrides.pop("stack", {}))  # type: ignore[arg-type]
    return load_settings(state_dir=state_dir, log_format="json", stack=stack, **overrides)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[Stack]:
    """PostgreSQL and Redis, started once per test session by our own stack code."""
    local = Stack(settings)
    local.up(["postgres", "redis"])
    try:
        yield local
    finally:
        local.down()


@pytest.fixture(scope="session")
def endpoints(stack: Stack, settings: Settings) -> Endpoints:
    return resolve_endpoints(settings)


@dataclass(frozen=True)
class RestartableStack:
    """A second stack (PostgreSQL + Redis) that restart tests may stop and start at will,
    so the session's servers (and MLflow's connections to them) are never disturbed."""

    settings: Settings
    stack: Stack


@pytest.fixture(scope="session")
def restartable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableStack]:
    from emily.memory.migrations import migrate

    settings = make_settings(tmp_path_factory.mktemp("restartable"))
    local = Stack(settings)
    local.up(["postgres", "redis"])
    migrate(settings)
    try:
        yield RestartableStack(settings, local)
    finally:
        local.down()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start README's quick start in the background when its test is selected (it overlaps the
    rest of the suite; the test waits for it)."""
    if any(item.name == "test_readme_quickstart_works_verbatim" for item in session.items):
        from tests.test_readme_quickstart import start_in_background

        base = session.config._tmp_path_factory  # type: ignore[attr-defined]
        start_in_background(base.mktemp("readme-quickstart") / "state")


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests import test_readme_quickstart

    if test_readme_quickstart.RUN is not None:
        test_readme_quickstart.RUN.stop()
