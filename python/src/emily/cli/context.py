"""What every ``emily`` command shares: the settings built once per invocation, one-line
errors, and ``--state-dir`` accepted before *and* after the subcommand.

Kept apart from ``app.py`` so command modules can import it without importing the whole CLI
(which imports them): the modules form a tree, not a cycle.
"""

from __future__ import annotations

import functools
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from typer.core import TyperGroup

from emily.errors import EmilyError
from emily.ui import print_error

err_console = Console(stderr=True)
T = TypeVar("T")

STATE_DIR_HELP = "State directory of the local stack (default: per-user state path)."
_OVERRIDES = "emily.overrides"


def build_settings(ctx: Any) -> Any:
    """Settings from the environment plus the root options collected so far."""
    from emily.config import load_settings
    from emily.telemetry.logs import configure_logging

    root = ctx.find_root()
    overrides: dict[str, Any] = root.meta.setdefault(_OVERRIDES, {})
    settings = load_settings(**overrides)
    configure_logging(settings)
    root.obj = settings
    return settings


def settings_of(ctx: Any) -> Any:
    """The settings of this invocation (built by the root callback, rebuilt when a
    subcommand's own ``--state-dir`` changed them)."""
    from emily.config import Settings

    root = ctx.find_root()
    settings = root.obj
    if not isinstance(settings, Settings):
        settings = build_settings(ctx)
    return settings


def run_async(awaitable: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, importing asyncio (0.1 s here) only in the commands that use it."""
    import asyncio

    return asyncio.run(awaitable)


def set_override(ctx: Any, key: str, value: Any) -> None:
    ctx.find_root().meta.setdefault(_OVERRIDES, {})[key] = value


def _state_dir_after_command(ctx: typer.Context, value: Path | None) -> None:
    if value is None:
        return
    set_override(ctx, "state_dir", value)
    build_settings(ctx)


@functools.cache
def _state_dir_option() -> Any:
    """A ``--state-dir`` parameter for leaf commands, built by Typer itself (so it is the same
    kind of object as every other option; Typer ships its own click). Built once and shared by
    every command: an option holds no per-command state, and building one per command (~40)
    was a tenth of a second of every start."""
    probe = typer.Typer()

    @probe.command()
    def _probe(
        state_dir: Annotated[
            Path | None,
            typer.Option(
                "--state-dir",
                help=STATE_DIR_HELP,
                callback=_state_dir_after_command,
                expose_value=False,
                is_eager=True,
            ),
        ] = None,
    ) -> None:  # pragma: no cover - never invoked
        pass

    return typer.main.get_command(probe).params[0]


class EmilyGroup(TyperGroup):
    """Every leaf command also takes ``--state-dir``; an ``EmilyError`` is one red line on
    stderr (naming field and row) and exit code 1, never a traceback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            if isinstance(command, TyperGroup):
                continue  # sub-groups are EmilyGroups themselves
            if not any("--state-dir" in getattr(p, "opts", ()) for p in command.params):
                command.params.append(_state_dir_option())

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except EmilyError as exc:
            print_error(err_console, str(exc))
            raise typer.Exit(code=exc.exit_code) from exc


def sub_app(help_text: str) -> typer.Typer:
    """A command group that shares the root's behaviour."""
    return typer.Typer(cls=EmilyGroup, no_args_is_help=True, help=help_text)
