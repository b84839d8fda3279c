"""The demo's terminal output: a console that keeps one line per turn, and the closing lines."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from rich.console import Console

from emily.ui import escape

if TYPE_CHECKING:
    from emily.demo.runner import DemoResult

WIDTH = 80


def terminal_console() -> Console:
    """80 columns when stdout is not a terminal (``make demo | tee``), else the terminal's."""
    columns = shutil.get_terminal_size((WIDTH, 24)).columns
    return Console(width=max(WIDTH, columns), highlight=False)


def print_result(result: DemoResult, console: Console) -> None:
    console.print(f"[bold]report:[/] {escape(str(result.report.resolve()))}")
    if result.traces_url:
        ui = escape(result.mlflow_url or "")
        console.print(f"[bold]traces:[/] {escape(result.traces_url)}  (MLflow UI {ui})")
    else:
        console.print("[yellow]traces:[/] no MLflow server answered; tracing was off")
    for problem in result.problems:
        console.print(f"[yellow]note:[/] {escape(problem)}")
