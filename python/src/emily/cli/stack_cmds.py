"""``emily up``, ``emily down``, ``emily status``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from emily.stack import Stack

console = Console()

ServicesOption = Annotated[
    list[str] | None,
    typer.Option("--service", "-s", help="Only this service (repeatable). Default: all."),
]


def register(app: typer.Typer) -> None:
    from emily.cli.app import settings_of

    @app.command()
    def up(ctx: typer.Context, service: ServicesOption = None) -> None:
        """Start the local stack (idempotent: running services are kept)."""
        stack = Stack(settings_of(ctx))
        state = stack.up(service)
        for name, record in state.services.items():
            if service is None or name in service:
                console.print(f"[green]●[/] {name:<9} {record.url}  pid {record.pid}")

    @app.command()
    def down(ctx: typer.Context, service: ServicesOption = None) -> None:
        """Stop the local stack (data stays in the state directory)."""
        Stack(settings_of(ctx)).down(service)
        console.print("stopped")

    @app.command()
    def status(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Show which local services run and answer. Exit code 1 if a started one is unhealthy."""
        settings = settings_of(ctx)
        statuses = Stack(settings).status()
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "state_dir": str(settings.state_dir),
                        "services": [s.model_dump(mode="json") for s in statuses],
                    },
                    indent=2,
                )
            )
        else:
            table = Table(
                "service", "running", "healthy", "pid", "url", title=str(settings.state_dir)
            )
            for s in statuses:
                table.add_row(
                    s.name,
                    "yes" if s.running else "no",
                    "[green]yes[/]" if s.healthy else "[red]no[/]",
                    str(s.pid or ""),
                    s.url or "",
                )
            console.print(table)
        if not all(s.healthy for s in statuses if s.started):
            raise typer.Exit(code=1)
