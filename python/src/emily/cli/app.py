"""The root ``emily`` application, composed from one module per subsystem.

Command modules import only Typer and Rich at module level; what a command needs (the memory
store, LangGraph, MLflow, Feast, ...) is imported inside it, so ``emily --help`` and
``emily status`` pay only for what they use (an import-budget test keeps it so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emily import __version__
from emily.cli import (
    agents_cmds,
    config_cmds,
    demo_cmds,
    doctor_cmds,
    features_cmds,
    infer_cmds,
    memory_cmds,
    mlops_cmds,
    stack_cmds,
)
from emily.cli.context import STATE_DIR_HELP, EmilyGroup, build_settings, set_override

app = typer.Typer(
    cls=EmilyGroup,
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
app.add_typer(config_cmds.app, name="config")
app.add_typer(memory_cmds.app, name="memory")
app.add_typer(infer_cmds.app, name="infer")
app.add_typer(agents_cmds.app, name="agents")
app.add_typer(mlops_cmds.app, name="mlops")
app.add_typer(features_cmds.app, name="features")
doctor_cmds.add_to(app)
demo_cmds.add_to(app)


def main() -> None:
    app()
