"""``emily agents run|serve|bench``: the triune loop from the command line."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from emily.cli.context import run_async, settings_of, sub_app
from emily.errors import ConfigError
from emily.ui import escape, progress

if TYPE_CHECKING:
    from rich.progress import Progress

    from emily.config import Settings

console = Console()
err_console = Console(stderr=True)

app = sub_app("The triune agent loop (instinct, affect, cognition).")


def _progress() -> Progress:
    return progress(err_console, transient=True)


def _with_cognition(settings: Settings, enabled: bool | None) -> Settings:
    if enabled is None:
        return settings
    agents = settings.agents.model_copy(update={"cognition_enabled": enabled})
    return settings.model_copy(update={"agents": agents})


@app.command("run")
def run(
    ctx: typer.Context,
    stimuli: Annotated[
        Path, typer.Option("--stimuli", help='JSON lines: {"text": ..., "threat": 0.8}.')
    ],
    thread: Annotated[
        str | None, typer.Option("--thread", help="Thread id (default: a new one).")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Finish an interrupted turn, skip lines the thread already ran."
        ),
    ] = False,
    cognition: Annotated[
        bool | None,
        typer.Option("--cognition/--no-cognition", help="Override EMILY_AGENTS__COGNITION."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per turn.")] = False,
) -> None:
    """Run a file of stimuli through the loop, one turn per line."""
    from emily.agents.loop import Agent, TurnResult
    from emily.agents.runner import load_stimuli, run_stimuli
    from emily.memory.window import accepted_window
    from emily.telemetry.tracing import setup_tracing, shutdown_tracing

    settings = _with_cognition(settings_of(ctx), cognition)
    # Episodes outside the accepted occurred_at window could not be stored: refuse the line.
    window = accepted_window(settings.database) if settings.agents.memory_enabled else None
    items = load_stimuli(stimuli, window)
    thread_id = thread or f"run-{uuid.uuid4().hex[:12]}"
    table = Table("turn", "policy", "layer", "affect (V/A/D)", "ms", "degraded", title=thread_id)

    async def main() -> None:
        async with await Agent.open(settings) as agent:
            with _progress() as progress:
                task = progress.add_task("turns", total=len(items))

                def show(result: TurnResult) -> None:
                    progress.advance(task)
                    if as_json:
                        typer.echo(result.model_dump_json())
                        return
                    table.add_row(
                        str(result.turn),
                        result.policy,
                        result.layer,
                        " ".join(f"{x:+.2f}" for x in result.affect),
                        f"{result.latency_ms:.0f}",
                        escape((result.degraded_reason or "")[:60]),
                    )

                await run_stimuli(agent, thread_id, items, resume=resume, on_result=show)

    setup_tracing(settings, service_name="emily-agents")
    try:
        run_async(main())
    finally:
        shutdown_tracing()  # flushes the spans of the last turns
    if not as_json:
        console.print(table)


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Serve the loop over HTTP (bearer token from EMILY_AGENTS__API_TOKEN[_FILE])."""
    import uvicorn

    from emily.agents.api import create_app
    from emily.telemetry.tracing import setup_tracing

    settings = settings_of(ctx)
    app_ = create_app(settings)
    setup_tracing(settings, service_name="emily-agents")
    uvicorn.run(
        app_,
        host=host or settings.agents.api_host,
        port=port or settings.agents.api_port,
        log_config=None,
    )


@app.command("bench")
def bench(
    ctx: typer.Context,
    stimuli: Annotated[int, typer.Option("--stimuli", min=1, help="Turns per arm.")] = 20,
    out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
    otlp: Annotated[
        str | None,
        typer.Option("--otlp", help="Traced arm exports here (OTLP/HTTP); default in-memory."),
    ] = None,
    load: Annotated[
        int | None,
        typer.Option(
            "--load",
            min=1,
            help="Instead: N concurrent POST /v1/episodes against the served API, then every "
            "answer checked against the stored episodes.",
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="With --load: threads to spread over (default N)."),
    ] = None,
) -> None:
    """Loop latency, overhead excluding the LLM, and tracing on vs off, in one run; or, with
    --load, the service under N concurrent requests (statuses, stored rows, deadline)."""
    settings = settings_of(ctx)
    if load is not None:
        from emily.agents.loadbench import run_load

        with _progress() as progress:
            progress.add_task(f"{load} concurrent turns", total=None)
            report = run_async(run_load(settings, load, threads=threads))
        _emit(report, out)
        return
    from emily.agents.bench import run_bench

    if not settings.agents.cognition_enabled:
        raise ConfigError(
            "the bench measures the loop with the LLM", field="EMILY_AGENTS__COGNITION_ENABLED"
        )
    exporter = None
    if otlp is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp)
    with _progress() as progress:
        task = progress.add_task("bench", total=stimuli + 2)
        report = run_async(
            run_bench(
                settings,
                stimuli,
                exporter=exporter,
                progress=lambda done: progress.update(task, completed=done),
            )
        )
    _emit(report, out)


def _emit(report: dict[str, object], out: Path | None) -> None:
    text = json.dumps(report, indent=2)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)
