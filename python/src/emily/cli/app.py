"""The root ``emily`` application, composed from one module per subsystem.

Command modules import only Typer and Rich at module level; what a command needs (the memory
store, LangGraph, MLflow, Feast, ...) is imported inside it, so ``emily --help`` and
``emily status`` pay only for what they use (an import-budget test keeps it so). The command
groups (``emily memory``, ``emily mlops`` ...) are loaded when named (click's lazy-group
pattern): ``emily status`` neither imports them nor builds their ~70 commands.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer

from emily import __version__
from emily.cli import demo_cmds, doctor_cmds, stack_cmds
from emily.cli.context import STATE_DIR_HELP, EmilyGroup, build_settings, set_override

# Command group → the module whose ``app`` it is, in the order `emily --help` lists them.
GROUPS = {
    "config": "emily.cli.config_cmds",
    "memory": "emily.cli.memory_cmds",
    "infer": "emily.cli.infer_cmds",
    "agents": "emily.cli.agents_cmds",
    "mlops": "emily.cli.mlops_cmds",
    "features": "emily.cli.features_cmds",
}


class RootGroup(EmilyGroup):
    """The root's own commands, plus the command groups of ``GROUPS`` loaded on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        own = super().list_commands(ctx)
        return [*own[:3], *GROUPS, *own[3:]]  # up, down, status; the groups; doctor, demo

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in GROUPS:
            module = importlib.import_module(GROUPS[cmd_name])
            command = typer.main.get_command(module.app)
            command.name = cmd_name
            self.commands[cmd_name] = command
        return command


app = typer.Typer(
    cls=RootGroup,
    no_args_is_help=True,
    help="Emily Sovereign command line.",
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"emily {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", envvar="EMILY_STATE_DIR", help=STATE_DIR_HELP)
    ] = None,
    log_format: Annotated[
        str | None, typer.Option("--log-format", help="auto, console or json.")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    if state_dir is not None:
        set_override(ctx, "state_dir", state_dir)
    if log_format is not None:
        set_override(ctx, "log_format", log_format)
    build_settings(ctx)


stack_cmds.add_to(app)
doctor_cmds.add_to(app)
demo_cmds.add_to(app)


def main() -> None:
    app()
