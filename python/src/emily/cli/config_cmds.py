"""``emily config show`` and ``emily config docs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from emily.cli.context import settings_of, sub_app

app = sub_app("Inspect configuration.")


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the effective settings as JSON (secrets masked)."""
    typer.echo(json.dumps(settings_of(ctx).model_dump(mode="json"), indent=2))


@app.command("docs")
def docs(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Render the settings reference (docs/configuration.md) from the code."""
    from emily.settings_doc import render_markdown

    text = render_markdown()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
