"""``emily doctor``: what this machine can serve, and whether the pieces are in place."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from emily.cli.context import run_async, settings_of
from emily.errors import EmilyError
from emily.ui import escape

if TYPE_CHECKING:
    from emily.config import Settings

console = Console()


def _found(find: Any, settings: Settings) -> dict[str, Any]:
    try:
        return {"ok": True, "path": str(find(settings))}
    except EmilyError as exc:
        return {"ok": False, "error": str(exc)}


async def _backend_checks(settings: Settings) -> tuple[dict[str, bool], dict[str, bool | None]]:
    """Per backend: does ``/health`` answer, and does the server accept our API key."""
    from emily.inference.client import InferenceClient

    async with InferenceClient.from_settings(settings) as client:
        return await client.health(), await client.key_checks()


def diagnose(settings: Settings) -> dict[str, Any]:
    from emily.inference.hardware import backend_support, cpu_flags, probe_gpus
    from emily.stack.llama_binaries import find_model, find_server_bin
    from emily.stack.manager import Stack

    gpus, cuda, why_none = probe_gpus()
    first = gpus[0] if gpus else None
    health, keys = run_async(_backend_checks(settings))
    verdicts = backend_support(
        first.compute_capability if first else None, first.name if first else "this GPU"
    )
    return {
        "gpus": [g.model_dump(mode="json") for g in gpus],
        "gpu_note": why_none,
        "cuda_version": cuda,
        "cpu_flags": cpu_flags(),
        "backends": [v.model_dump() for v in verdicts],
        "llama_server": _found(find_server_bin, settings),
        "model": _found(find_model, settings),
        "services": [s.model_dump(mode="json") for s in Stack(settings).status()],
        "inference_health": health,
        "inference_key_accepted": keys,
    }


def _show(report: dict[str, Any]) -> None:
    if report["gpus"]:
        for gpu in report["gpus"]:
            cc = gpu["compute_capability"]
            console.print(
                f"GPU: {gpu['name']}, compute capability "
                f"{'.'.join(map(str, cc)) if cc else '?'}, driver {gpu['driver_version']}, "
                f"CUDA {report['cuda_version'] or '?'}"
            )
    else:
        console.print(f"GPU: none ({escape(str(report['gpu_note']))})", highlight=False)
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in report["cpu_flags"].items())
    console.print(f"CPU: {flags}")
    table = Table("backend", "can run", "why", title="Backends on this machine")
    for verdict in report["backends"]:
        ok = "[green]yes[/]" if verdict["ok"] else "[red]no[/]"
        table.add_row(verdict["backend"], ok, verdict["reason"])
    console.print(table)
    for label, key in (("llama-server", "llama_server"), ("model", "model")):
        item = report[key]
        mark = "[green]✓[/]" if item["ok"] else "[red]✗[/]"
        detail = escape(str(item.get("path") or item.get("error")))
        console.print(f"{mark} {label}: {detail}", highlight=False)
    for service in report["services"]:
        mark = "[green]●[/]" if service["healthy"] else "[red]○[/]"
        where = escape(service["url"] or "not started")
        console.print(f"{mark} service {service['name']}: {where}", highlight=False)
    for name, ok in report["inference_health"].items():
        accepted = report["inference_key_accepted"].get(name)
        key = {True: "key accepted", False: "key refused", None: "unreachable"}[accepted]
        mark = "[green]●[/]" if ok and accepted else "[red]○[/]"
        console.print(f"{mark} inference backend {escape(name)} ({key})")


def _emit(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _show(report)


def add_to(app: typer.Typer) -> None:
    @app.command()
    def doctor(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
        rules: Annotated[
            bool,
            typer.Option("--rules-json", help="Print the GPU/backend rule table (for Nix)."),
        ] = False,
    ) -> None:
        """GPU, CUDA, CPU flags, which inference backends can run here and why, and whether
        llama-server, the model and the stack services are in place."""
        if rules:
            from emily.inference.hardware import rules_json

            typer.echo(rules_json(), nl=False)
            return
        _emit(diagnose(settings_of(ctx)), as_json)
