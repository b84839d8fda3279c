"""``emily up``, ``emily down``, ``emily status``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from emily.cli.context import settings_of
from emily.ui import escape

console = Console()
err_console = Console(stderr=True)

ServicesOption = Annotated[
    list[str] | None,
    typer.Option("--service", "-s", help="Only this service (repeatable). Default: all."),
]


def up(ctx: typer.Context, service: ServicesOption = None) -> None:
    """Start the local stack and bring its data up to date (idempotent: running services are
    kept, migrations that ran are not repeated)."""
    from emily.provision import up as provision_up

    state, provisioned, warnings = provision_up(settings_of(ctx), service)
    for message in warnings:
        err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)
    for name, record in state.services.items():
        if service is None or name in service:
            console.print(f"[green]●[/] {name:<9} {record.url}  pid {record.pid}", highlight=False)
    for line in provisioned:
        console.print(f"[green]✓[/] {line}", highlight=False)


def down(ctx: typer.Context, service: ServicesOption = None) -> None:
    """Stop the local stack (data stays in the state directory)."""
    from emily.stack.manager import Stack

    Stack(settings_of(ctx)).down(service)
    console.print("stopped")


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show which local services run and answer. Exit code 1 if a started one is unhealthy."""
    from emily.stack.manager import Stack

    settings = settings_of(ctx)
    statuses = Stack(settings).status()
    if as_json:
        payload = {
            "state_dir": str(settings.state_dir),
            "services": [s.model_dump(mode="json") for s in statuses],
        }
        typer.echo(json.dumps(payload, indent=2))
    else:
        table = Table("service", "running", "healthy", "pid", "url", title=str(settings.state_dir))
        for s in statuses:
            table.add_row(
                s.name,
                "yes" if s.running else "no",
                "[green]yes[/]" if s.healthy else "[red]no[/]",
                str(s.pid or ""),
                escape(s.url or s.detail),
            )
        console.print(table)
    if not all(s.healthy for s in statuses if s.started):
        raise typer.Exit(code=1)


def add_to(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)
