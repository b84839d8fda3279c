"""``emily features ...``: the Feast feature store (apply, serve, materialize, backfill, push,
monitor, UI, baseline, benchmark). Feast is imported inside the commands that need it (seconds)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from emily.cli.context import run_async, settings_of, sub_app
from emily.errors import ConfigError
from emily.ui import escape

app = sub_app("Feature store (Feast): Redis online, PostgreSQL offline.")
console = Console()

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since", help="Start: ISO-8601 with offset, or a duration back from now (90m, 6h, 2d)."
    ),
]
ViewsOption = Annotated[
    list[str] | None, typer.Option("--view", help="Only this view (repeatable). Default: all.")
]


def parse_moment(text: str, field: str, now: datetime | None = None) -> datetime:
    """``2026-01-01T00:00:00+00:00`` or a duration before now (``6h``)."""
    now = now or datetime.now(UTC)
    match = _DURATION.match(text.strip())
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"not a time: {text[:40]!r}", field=field, hint="e.g. 2026-01-01T00:00:00+00:00 or 6h"
        ) from None
    if moment.tzinfo is None:
        raise ConfigError("needs a time zone offset (naive times are ambiguous)", field=field)
    return moment


def _runs_table(result: Any, title: str) -> None:
    table = Table("view", "from", "to", "source rows", "entities", "s", "rows/s", title=title)
    for run in result.runs:
        table.add_row(
            run.view,
            f"{run.start:%Y-%m-%d %H:%M}",
            f"{run.end:%Y-%m-%d %H:%M}",
            str(run.rows),
            str(run.entities),
            f"{run.seconds:.2f}",
            f"{run.rows_per_s:.0f}",
        )
    console.print(table)


@app.command()
def apply(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Apply even if nothing changed.")] = False,
) -> None:
    """Apply the feature repository (idempotent; `emily up` runs it)."""
    from emily.features.apply import ensure_applied

    console.print(escape(ensure_applied(settings_of(ctx), force=force).summary()), highlight=False)


@app.command()
def materialize(
    ctx: typer.Context,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental",
            help="From each view's last materialization (minus the overlap) to now.",
        ),
    ] = False,
    since: SinceOption = None,
    until: Annotated[str | None, typer.Option("--until", help="End (default: now).")] = None,
    view: ViewsOption = None,
) -> None:
    """Load the views' newest rows from the offline store into the online store."""
    from emily.features.offline import materialize as run

    settings = settings_of(ctx)
    start = parse_moment(since, "--since") if since else None
    end = parse_moment(until, "--until") if until else None
    result = run(settings, since=start, until=end, incremental=incremental, views=view)
    _runs_table(result, "materialized")


@app.command()
def backfill(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option("--since", help="Rebuild from here (ISO-8601 or 6h, 2d ...).")
    ],
    view: ViewsOption = None,
) -> None:
    """Rebuild the online store from the offline store: delete the views' online rows, then
    materialize from --since to now."""
    from emily.features.offline import backfill as run

    result = run(settings_of(ctx), since=parse_moment(since, "--since"), views=view)
    _runs_table(result, f"rebuilt (online rows deleted first: {', '.join(result.deleted)})")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Listen port.")] = 6566,
) -> None:
    """Run `feast serve` in the foreground, configured as the local stack runs it (for systemd;
    the local stack uses `emily up`)."""
    from emily.stack.feast_launcher import serve_main

    raise typer.Exit(code=serve_main(settings_of(ctx), host, port))


@app.command()
def push(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Push source, e.g. stimulus_push_v1.")],
    file: Annotated[Path, typer.Argument(help="JSON lines, one row per line.")],
) -> None:
    """Push rows from outside the agent loop (replays, repairs): every row validated and matched
    to a stored episode first; one bad row refuses the whole file (nothing written)."""
    from emily.features.push import push_file

    pushed = run_async(push_file(settings_of(ctx), source, file))
    console.print(f"pushed {pushed} row(s) to {escape(source)}", highlight=False)


@app.command()
def monitor(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit code 2 when any view is flagged.")
    ] = False,
) -> None:
    """Per view: freshness against its TTL, missing values, drift against the baseline."""
    from emily.features.monitor import monitor as run

    report = run(settings_of(ctx))
    if as_json:
        payload = report.model_dump(mode="json")
        payload["flagged"] = report.flagged
        typer.echo(json.dumps(payload, indent=2))
    else:
        table = Table(
            "view",
            "ttl",
            "online age",
            "offline age",
            "rows",
            "max missing",
            "online missing",
            "drift (min p)",
            "flags",
            title=f"feature monitor ({report.project})",
        )
        for view in report.views:
            worst = max(view.missing_rate.values(), default=0.0)
            p = min(
                (d.adjusted_p_value or d.p_value for d in view.drift),
                default=None,
            )
            table.add_row(
                view.view,
                _duration(view.ttl_s),
                _duration(view.online_age_s),
                _duration(view.offline_age_s),
                str(view.rows),
                f"{worst:.1%}",
                "-" if view.online_missing_rate is None else f"{view.online_missing_rate:.1%}",
                "no baseline" if view.baseline is None else ("-" if p is None else f"{p:.3g}"),
                "[red]" + escape(" ".join(view.flags)) + "[/]" if view.flags else "[green]ok[/]",
            )
        console.print(table)
    if strict and report.flagged:
        raise typer.Exit(code=2)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@app.command()
def baseline(
    ctx: typer.Context,
    since: Annotated[str, typer.Option("--since", help="Training window start.")] = "7d",
    until: Annotated[str | None, typer.Option("--until", help="Window end (default: now).")] = None,
    label: Annotated[str, typer.Option("--label", help="Name of the training set.")] = "",
) -> None:
    """Build a point-in-time training set of the episodes in the window and keep its feature
    distributions as the drift baseline of `emily features monitor`."""
    from emily.features.training import baseline_from_episodes

    settings = settings_of(ctx)
    start = parse_moment(since, "--since")
    end = parse_moment(until, "--until") if until else datetime.now(UTC)
    name = label or f"episodes {start:%Y-%m-%d}..{end:%Y-%m-%d}"
    kept = baseline_from_episodes(settings, since=start, until=end, label=name)
    console.print(f"baseline '{escape(name)}': {len(kept)} features, {max(kept.values())} values")


@app.command()
def ui(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option("--port", help="Port (default: setting).")] = None,
) -> None:
    """Serve Feast's web UI (registry browser) on 127.0.0.1 until interrupted."""
    from emily.features.webui import serve_ui

    settings = settings_of(ctx)
    chosen = port or settings.features.ui_port
    console.print(f"Feast UI on http://127.0.0.1:{chosen} (Ctrl-C stops it)")
    raise typer.Exit(code=serve_ui(settings, chosen))


@app.command()
def bench(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--json", help="Write the results here.")],
    seconds: Annotated[float, typer.Option("--seconds", help="Per path and concurrency.")] = 5.0,
    rows: Annotated[
        int, typer.Option("--rows", help="Rows for the materialization run (0: skip).")
    ] = 100_000,
) -> None:
    """Online read latency (sdk, sdk-odfv, http, redis; concurrency 1 and 4) and
    materialization throughput, on the running stack."""
    from emily.features.bench import Options, run, write

    if seconds <= 0:
        raise ConfigError("must be positive", field="--seconds")
    if rows < 0:
        raise ConfigError("must be >= 0", field="--rows")
    document = run(settings_of(ctx), Options(seconds=seconds, materialize_rows=rows))
    write(document, out)
    table = Table(
        "path", "c", "p50 ms", "p95 ms", "p99 ms", "qps", "p50/redis", title="online reads"
    )
    for r in document["results"]:
        table.add_row(
            r["path"],
            str(r["concurrency"]),
            f"{r['p50_ms']:.2f}",
            f"{r['p95_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['qps']:.0f}",
            f"{r['p50_vs_redis']:.1f}x",
        )
    console.print(table)
    mat = document["materialize"]
    if mat:
        console.print(
            f"materialize: {mat['rows']} rows in {mat['seconds']:.1f} s "
            f"= {mat['rows_per_s']:.0f} rows/s"
        )
    console.print(f"written: {escape(str(out))}")
