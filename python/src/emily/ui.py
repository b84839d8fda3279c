"""Terminal output shared by the CLI, the demo and the benchmarks: one progress-bar style, and
printing that never treats user text as Rich markup."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from emily.errors import ConfigError, EmilyError

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["escape", "parse_ints", "print_error", "progress"]


def progress(console: Console, *, transient: bool = False) -> Progress:
    """A progress bar: description, bar, done/total, elapsed (rich.progress imported here: every
    command imports this module, few draw a bar)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )


def print_error(console: Console, message: str) -> None:
    """``error: <message>`` in red; the message is printed literally (it may quote input)."""
    console.print("[bold red]error:[/] " + escape(message), highlight=False, soft_wrap=True)


def parse_ints(
    text: str, field: str, *, minimum: int | None = None, error: type[EmilyError] = ConfigError
) -> tuple[int, ...]:
    """``"1,2,4"`` → ``(1, 2, 4)``; a typed error naming ``field`` otherwise."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise error(f"expected comma-separated integers, got {text!r}", field=field) from exc
    if not values:
        raise error("no values given", field=field)
    if minimum is not None and any(v < minimum for v in values):
        raise error(f"every value must be at least {minimum}", field=field)
    return values
