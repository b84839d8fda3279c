"""The demo's terminal output: a console that keeps one line per turn, and the closing lines."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console

from emily.ui import escape

if TYPE_CHECKING:
    from emily.demo.drift_act import ActResult
    from emily.demo.report import LoopRecord
    from emily.demo.runner import DemoResult

WIDTH = 80


def terminal_console() -> Console:
    """80 columns when stdout is not a terminal (``make demo | tee``), else the terminal's."""
    columns = shutil.get_terminal_size((WIDTH, 24)).columns
    # Bound to today's stdout, so the demo's own output stays visible while library output
    # (MLflow's run links) is redirected away from it.
    return Console(file=sys.stdout, width=max(WIDTH, columns), highlight=False)


def print_result(result: DemoResult, console: Console) -> None:
    console.print(f"[bold]report:[/] {escape(str(result.report.resolve()))}")
    if result.traces_url:
        ui = escape(result.mlflow_url or "")
        console.print(f"[bold]traces:[/] {escape(result.traces_url)}  (MLflow UI {ui})")
    else:
        console.print("[yellow]traces:[/] no MLflow server answered; tracing was off")
    for problem in result.problems:
        console.print(f"[yellow]note:[/] {escape(problem)}")


def turn_line(r: LoopRecord, text_width: int = 33) -> str:
    """One turn in at most 80 columns: number, time, stimulus (cut), winning layer, policy,
    valence, latency, and ``!`` for a degraded turn."""
    text = r.text if len(r.text) <= text_width else r.text[: text_width - 1] + "…"
    flag = "!" if r.degraded else " "
    return (
        f"{r.index:>2} {r.at:%H:%M} {text:<{text_width}} {r.winner:<9} {r.policy:<8} "
        f"{r.valence:+.2f} {r.latency_ms:>6.0f}ms {flag}"
    )


def summarise_day(records: Sequence[LoopRecord], console: Console) -> None:
    header = (
        f"{'#':>2} {'time':<5} {'stimulus':<33} {'layer':<9} {'policy':<8} {'V':>5} {'latency':>8}"
    )
    console.print(f"[bold]{header}[/]", no_wrap=True, overflow="crop")
    for r in records:
        line = escape(turn_line(r))
        console.print(f"[red]{line}[/]" if r.degraded else line, no_wrap=True, overflow="crop")
    degraded = sum(r.degraded for r in records)
    console.print(f"{len(records)} turns, {degraded} degraded (!)")


def summarise_act(act: ActResult, console: Console) -> None:
    """The second act in a few lines: each decision of the watch, the error before and after."""
    for p in act.decisions:
        if p.decision is not None and p.decision.action not in ("nothing", "drift-without-data"):
            line = f"turn {p.turn:>3} watch: {p.decision.action}: {p.decision.reason}"
            console.print(escape(line[:240]))
    detected = act.detected_turn
    if detected is not None:
        console.print(f"drift detected {detected - act.onset_turn} turns after the onset")
    if act.new_champion is not None and act.onset_to_promoted_s is not None:
        console.print(
            f"[green]new champion[/] {escape(act.model)} v{act.new_champion}, "
            f"{act.onset_to_promoted_s:.0f} s after the onset"
        )
    for problem in act.problems:
        console.print(f"[yellow]second act:[/] {escape(problem)}")
