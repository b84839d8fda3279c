"""``emily demo``: the main job (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emily.cli.context import settings_of


def demo(
    ctx: typer.Context,
    corpus_size: Annotated[
        int, typer.Option("--corpus-size", min=1, help="WordNet glosses seeded into memory.")
    ] = 3000,
    stimuli: Annotated[
        int | None,
        typer.Option("--stimuli", min=1, help="Stimuli of the scripted day (default: all)."),
    ] = None,
    report_dir: Annotated[
        Path, typer.Option("--report-dir", help="Where the HTML report and PNGs go.")
    ] = Path("demo-report"),
    days: Annotated[
        int, typer.Option("--days", min=1, help="Corpus timestamps span this many days.")
    ] = 120,
    agents: Annotated[
        bool, typer.Option("--agents/--no-agents", help="Run the scripted day.")
    ] = True,
    train: Annotated[
        bool,
        typer.Option(
            "--train/--no-train",
            help="Train the appraisal model when none is champion yet (first run: dvc repro).",
        ),
    ] = True,
    drift_act: Annotated[
        bool,
        typer.Option(
            "--drift-act/--no-drift-act",
            help="After the day, the second act: the stream shifts to chat text, the loop "
            "detects it, retrains, A/B-tests and promotes.",
        ),
    ] = True,
) -> None:
    """Start the local stack, seed memory from WordNet, search it, live a scripted day
    through the agent loop, then a stream that drifts (second act), and write an HTML
    report."""
    from emily.demo.console import print_result, terminal_console
    from emily.demo.runner import DemoOptions, run_demo

    console = terminal_console()
    options = DemoOptions(
        corpus_size=corpus_size,
        stimuli=stimuli,
        report_dir=report_dir,
        days=days,
        agents=agents,
        train=train,
        drift_act=drift_act,
    )
    print_result(run_demo(settings_of(ctx), options, console), console)


def add_to(app: typer.Typer) -> None:
    app.command()(demo)
