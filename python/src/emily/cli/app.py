"""Root Typer application. Each subsystem contributes its own sub-app (``emily memory ...``).

Every ``EmilyError`` becomes one red line on stderr naming the field/row, and exit code 1;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from emily import __version__
from emily.config import Settings, load_settings
from emily.errors import EmilyError
from emily.telemetry.logs import configure_logging

err_console = Console(stderr=True)


class EmilyGroup(TyperGroup):
    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except EmilyError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=exc.exit_code) from exc


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
        Path | None,
        typer.Option(
            "--state-dir",
            envvar="EMILY_STATE_DIR",
            help="State directory of the local stack (default: per-user state path).",
        ),
    ] = None,
    log_format: Annotated[
        str | None, typer.Option("--log-format", help="auto, console or json.")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    overrides: dict[str, Any] = {}
    if state_dir is not None:
        overrides["state_dir"] = state_dir
    if log_format is not None:
        overrides["log_format"] = log_format
    try:
        settings = load_settings(**overrides)
    except EmilyError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from exc
    configure_logging(settings)
    ctx.obj = settings


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the root callback built (subcommands call this)."""
    root_ctx = ctx.find_root()
    settings = root_ctx.obj
    if not isinstance(settings, Settings):  # pragma: no cover - root callback always runs
        settings = load_settings()
        root_ctx.obj = settings
    return settings


def _register() -> None:
    # Imported here so each sub-app module can import `app`/`settings_of` from this module.
    from emily.cli import config_cmds, stack_cmds

    stack_cmds.register(app)
    config_cmds.register(app)
    for module_name in ("memory_cmds", "infer_cmds", "agents_cmds", "doctor_cmds", "demo_cmds"):
        try:
            module = __import__(f"emily.cli.{module_name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"emily.cli.{module_name}":
                raise
            continue
        module.register(app)


_register()


def main() -> None:
    app()
