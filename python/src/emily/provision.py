"""``emily up`` leaves a usable system: after the servers start, their data planes are brought
to the state the code expects (idempotently, on every ``up``):

* PostgreSQL: the episodic-memory migrations (schema, partitions ahead, the application role).
* The feature store: the features schema, role and source views, and the Feast repository
  (``feast apply`` semantics, skipped when the definitions did not change); then the feature
  server starts, so it never serves an empty or outdated registry. When a changed definition is
  applied while the server runs, the server is restarted to pick it up at once.

* MLflow: the cognition prompt in the prompt registry (registered when its text is new; the
  ``production`` alias set when it does not exist yet, never moved by ``up``).

So the quick start works exactly as the README shows it: ``emily up`` then any command.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from emily.locator import FEATURES, MLFLOW, POSTGRES
from emily.telemetry.logs import get_logger

if TYPE_CHECKING:
    from emily.config import Settings
    from emily.features.apply import ApplyResult
    from emily.stack.manager import Stack
    from emily.statefile import StackState

log = get_logger("provision")


def provision(settings: Settings, started: Iterable[str]) -> list[str]:
    """Provision what the started services hold; returns one line per step done."""
    names = set(started)
    done: list[str] = []
    if POSTGRES in names:
        from emily.memory.migrations import migrate

        applied = migrate(settings)
        done.append(f"memory schema up to date (applied: {applied or 'nothing new'})")
    if MLFLOW in names:
        done.append(register_prompt(settings))
    for line in done:
        log.info("provisioned", step=line)
    return done


def register_prompt(settings: Settings) -> str:
    """The built-in cognition prompt in the registry (a no-op when that text is registered)."""
    from emily.agents.cognition import DEFAULT_PROMPT
    from emily.mlops.prompts import register

    prompt, created = register(settings, system=DEFAULT_PROMPT.system, user=DEFAULT_PROMPT.user)
    state = "registered" if created else "already registered"
    return f"cognition prompt {state}: {prompt.uri}"


def features_up(
    settings: Settings, stack: Stack, applied: ApplyResult | None = None
) -> tuple[StackState, str]:
    """Apply the feature repository (unless ``applied`` says it was), then start (or restart,
    when a change was applied) the local feature server."""
    from emily.features.apply import ensure_applied

    result = applied if applied is not None else ensure_applied(settings)
    record = stack.record(FEATURES)
    if result.applied and record is not None and record.pid is not None:
        stack.down([FEATURES])  # it would serve the old definitions until its next refresh
    state = stack.up([FEATURES])
    log.info("provisioned", step=result.summary())
    return state, result.summary()


def up(
    settings: Settings, names: list[str] | None = None
) -> tuple[StackState, list[str], list[str]]:
    """Start the services and provision them: ``(state, provisioning lines, warnings)``.

    MLflow's start (tens of seconds: imports and its own migrations) overlaps applying the
    feature repository (mostly importing Feast), which needs only PostgreSQL."""
    from emily.stack.manager import Stack
    from emily.stack.registry import SERVICES

    stack = Stack(settings)
    wanted = list(names) if names is not None else [n for n in SERVICES if not stack.external(n)]
    first = [n for n in wanted if n not in (FEATURES, MLFLOW)]
    state = stack.up(first) if first else stack.state_dir.read()
    lines = provision(settings, first)
    applying: Future[ApplyResult] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="feast-apply") as pool:
        if FEATURES in wanted:
            from emily.features.apply import ensure_applied

            applying = pool.submit(ensure_applied, settings)
        try:
            if MLFLOW in wanted:
                state = stack.up([MLFLOW])
                lines += provision(settings, [MLFLOW])
        finally:
            applied = applying.result() if applying is not None else None
    if applied is not None:
        state, line = features_up(settings, stack, applied)
        lines.append(line)
    return state, lines, stack.warnings
