"""``emily infer chat|bench|serve``: talk to, measure and run the inference backends."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from emily.cli.context import run_async, settings_of, sub_app
from emily.ui import parse_ints, progress

if TYPE_CHECKING:
    from emily.config import Settings

console = Console()
app = sub_app("Chat with, benchmark and serve the inference gateway.")


async def _chat(
    settings: Settings,
    prompt: str,
    system: str | None,
    schema: Path | None,
    backend: str | None,
    max_tokens: int,
    stream: bool,
    deadline: float | None = None,
) -> dict[str, Any]:
    from emily.inference.client import InferenceClient
    from emily.inference.from_json_schema import load_schema_file

    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    model = load_schema_file(schema) if schema is not None else None
    async with InferenceClient.from_settings(settings) as client:
        if model is not None:
            structured = await client.generate_structured(
                messages, model, max_tokens=max_tokens, backend=backend, deadline_s=deadline
            )
            payload = structured.model_dump(mode="json")
            payload["value"] = structured.value.model_dump(mode="json")
            return payload
        result = await client.chat(
            messages, max_tokens=max_tokens, stream=stream, backend=backend, deadline_s=deadline
        )
        return result.model_dump(mode="json")


def _print_chat(result: dict[str, Any], structured: bool, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(json.dumps(result["value"], indent=2) if structured else str(result["text"]))
    ttft = result.get("ttft_ms")
    console.print(
        f"[dim]{result['backend']} · {result['model']} · {result['latency_ms']:.0f} ms"
        + (f" · TTFT {ttft:.0f} ms" if isinstance(ttft, float) else "")
        + "[/]",
        highlight=False,
    )


def _write_report(report: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for row in report["results"]:
        console.print(
            f"{row['backend']} c={row['concurrency']}: TTFT p50 {row['ttft_ms']['p50']} ms, "
            f"ITL p50 {row['inter_token_ms']['p50']} ms, {row['output_tokens_per_s']} tok/s, "
            f"overhead p95 {row['client_overhead_ms']['p95']} ms, "
            f"validity {row['structured']['validity']}",
            highlight=False,
        )
    console.print(f"wrote {out}")


@app.command("chat")
def chat(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument(help="The user message.")],
    schema: Annotated[
        Path | None,
        typer.Option("--schema", help="JSON-schema file: answer is constrained and validated."),
    ] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", help="Only this backend (no fallback).")
    ] = None,
    system: Annotated[str | None, typer.Option("--system", help="System prompt.")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 256,
    stream: Annotated[bool, typer.Option("--stream/--no-stream")] = True,
    deadline: Annotated[
        float | None,
        typer.Option("--deadline", min=0.001, help="Seconds (default: inference.deadline_s)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Full result as JSON.")] = False,
) -> None:
    """Ask the backend chain once; with --schema, get validated JSON."""
    result = run_async(
        _chat(settings_of(ctx), prompt, system, schema, backend, max_tokens, stream, deadline)
    )
    _print_chat(result, schema is not None, as_json)


@app.command("bench")
def bench(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--json", help="Write the results here (JSON).")],
    url: Annotated[
        list[str] | None,
        typer.Option("--url", help="OpenAI base URL (repeatable). Default: configured chain."),
    ] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            "--api-key-file",
            help="File holding the bearer key for --url (default: the local stack's key for "
            "its own URL).",
        ),
    ] = None,
    concurrency: Annotated[str, typer.Option("--concurrency")] = "1,4,8",
    requests: Annotated[int, typer.Option("--requests", min=0, help="Chats per level.")] = 16,
    prompt_tokens: Annotated[int, typer.Option("--prompt-tokens", min=8)] = 100,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 32,
    structured: Annotated[
        int, typer.Option("--structured", min=0, help="Cognition-schema requests per level.")
    ] = 0,
    structured_max_tokens: Annotated[
        int, typer.Option("--structured-max-tokens", min=16, help="Per structured answer.")
    ] = 320,
) -> None:
    """TTFT, inter-token latency, tokens/s, client overhead and structured validity."""
    from emily.inference.bench import BenchConfig, run_bench, total_requests

    config = BenchConfig(
        urls=url or [],
        api_key_file=api_key_file,
        concurrency=list(parse_ints(concurrency, "concurrency", minimum=1)),
        requests=requests,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        structured=structured,
        structured_max_tokens=structured_max_tokens,
    )
    settings = settings_of(ctx)
    backends = len(config.urls) or len(settings.inference.backends)
    with progress(Console(stderr=True)) as bar:
        task = bar.add_task("bench", total=total_requests(config, backends))
        report = run_async(run_bench(settings, config, lambda n: bar.advance(task, n)))
    _write_report(report, out)


@app.command("serve")
def serve(
    ctx: typer.Context,
    foreground: Annotated[
        bool,
        typer.Option("--foreground", help="Stay attached; stop the server on Ctrl-C."),
    ] = False,
) -> None:
    """Start the local llama-server (same as `emily up -s llm`)."""
    from emily.stack.manager import Stack
    from emily.stack.process import pid_alive

    stack = Stack(settings_of(ctx))
    record = stack.up(["llm"]).services["llm"]
    console.print(f"[green]●[/] llm  {record.url}  pid {record.pid}")
    console.print(f"[dim]log: {record.details.get('log')}[/]")
    if not foreground:
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            if not pid_alive(record.pid):
                console.print("[red]llama-server exited[/]")
                raise typer.Exit(code=1)
    except KeyboardInterrupt:
        pass
    finally:
        stack.down(["llm"])
        console.print("stopped")
