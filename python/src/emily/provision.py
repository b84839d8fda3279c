"""``emily up`` leaves a usable system: after the servers start, their data planes are brought
to the state the code expects (idempotently, on every ``up``):

* PostgreSQL: the episodic-memory migrations (schema, partitions ahead, the application role).

Later layers add theirs here (the feature repository, the prompt registry), so that the
quick start works exactly as the README shows it: ``emily up`` then any command.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from emily.telemetry.logs import get_logger

if TYPE_CHECKING:
    from emily.config import Settings
    from emily.statefile import StackState

log = get_logger("provision")


def provision(settings: Settings, started: Iterable[str]) -> list[str]:
    """Provision what the started services hold; returns one line per step done."""
    names = set(started)
    done: list[str] = []
    if "postgres" in names:
        from emily.memory.migrations import migrate

        applied = migrate(settings)
        done.append(f"memory schema up to date (applied: {applied or 'nothing new'})")
    for line in done:
        log.info("provisioned", step=line)
    return done


def up(
    settings: Settings, names: list[str] | None = None
) -> tuple[StackState, list[str], list[str]]:
    """Start the services and provision them: ``(state, provisioning lines, warnings)``."""
    from emily.stack.manager import Stack

    stack = Stack(settings)
    state = stack.up(names)
    started = [n for n in state.services if names is None or n in names]
    return state, provision(settings, started), stack.warnings
