"""``emily config show`` and ``emily config docs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from emily.settings_doc import render_markdown


def register(app: typer.Typer) -> None:
    from emily.cli.app import settings_of

    config_app = typer.Typer(no_args_is_help=True, help="Inspect configuration.")
    app.add_typer(config_app, name="config")

    @config_app.command("show")
    def show(ctx: typer.Context) -> None:
        """Print the effective settings as JSON (secrets masked)."""
        settings = settings_of(ctx)
        typer.echo(json.dumps(settings.model_dump(mode="json"), indent=2))

    @config_app.command("docs")
    def docs(
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
        ] = None,
    ) -> None:
        """Render the settings reference (docs/configuration.md) from the code."""
        text = render_markdown()
        if output is None:
            typer.echo(text, nl=False)
        else:
            output.write_text(text, encoding="utf-8")
