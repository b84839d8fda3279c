"""``emily mlops …``: the appraisal model's lifecycle (train, status, promote, rollback,
predict, lineage) and the cognition prompt's evaluation."""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from emily.cli.context import settings_of, sub_app
from emily.errors import EmilyError
from emily.ui import escape, progress

app = sub_app("Model lifecycle: DVC pipeline, MLflow tracking, registry, prompts, evaluation.")
console = Console()
err_console = Console(stderr=True)

AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ApprovedBy = Annotated[
    str | None,
    typer.Option("--approved-by", help="Who approves (default: EMILY_MLOPS__APPROVED_BY)."),
]


def _own_stdout() -> contextlib.AbstractContextManager[Any]:
    """MLflow prints run links on stdout; stdout is this command's output (JSON lines, a JSON
    document), so anything a library prints goes to stderr instead."""
    return contextlib.redirect_stdout(sys.stderr)


@contextlib.contextmanager
def _repro_progress(label: str) -> Iterator[Callable[[str], None]]:
    """A progress bar over the DVC stages (on stderr), advanced by the ``on_stage`` it yields;
    library output goes to stderr meanwhile (see ``_own_stdout``)."""
    from emily.mlops.versioning import STAGES

    with progress(err_console, transient=True) as bar, _own_stdout():
        task = bar.add_task(label, total=len(STAGES))

        def on_stage(stage: str) -> None:
            bar.update(task, advance=1, description=f"dvc repro: {stage}")

        yield on_stage


def _print(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


@app.command()
def train(
    ctx: typer.Context,
    trained_by: Annotated[
        str | None, typer.Option("--trained-by", help="Recorded on the version (default: $USER).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Run the DVC pipeline (a no-op when nothing changed) and register the model as
    challenger; the first model also becomes champion."""
    from emily.mlops import lifecycle

    settings = settings_of(ctx)
    with _repro_progress("dvc repro") as on_stage:
        result = lifecycle.train(
            settings, trained_by=trained_by or getpass.getuser(), on_stage=on_stage
        )
    if as_json:
        _print(result)
        return
    verb = "registered" if result["registered"] else "already registered"
    extra = ", champion (first model)" if result["champion"] else ", alias challenger"
    r = result["metrics"].get("model.all.r")
    console.print(f"version {result['version']} {verb}{extra}; held-out r = {r}", highlight=False)


@app.command()
def status(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Champion and challenger: versions, held-out metrics, data hashes."""
    from emily.mlops import lifecycle

    with _own_stdout():
        result = lifecycle.status(settings_of(ctx))
    if as_json:
        _print(result)
        return
    table = Table("alias", "version", "r", "r word", "r other", "data (lexicon md5)", "trained by")
    for alias in ("champion", "challenger"):
        info = result[alias]
        if info is None:
            table.add_row(alias, "—", "", "", "", "", "")
            continue
        m = info["metrics"]
        table.add_row(
            alias,
            str(info["version"]),
            f"{m.get('model.all.r', float('nan')):.4f}",
            f"{m.get('model.word.r', float('nan')):.4f}",
            f"{m.get('model.other.r', float('nan')):.4f}",
            str(info["data"].get("lexicon", ""))[:12],
            escape(str(info.get("trained_by") or "")),
        )
    console.print(table)


@app.command()
def promote(ctx: typer.Context, approved_by: ApprovedBy = None, as_json: AsJson = False) -> None:
    """Move champion to the challenger if it is significantly better on the same held-out
    rows (paired bootstrap); refused otherwise, with the numbers (exit code 3)."""
    from emily.mlops import lifecycle

    with _own_stdout():
        result = lifecycle.promote(settings_of(ctx), approved_by=approved_by)
    if as_json:
        _print(result)
        return
    comparison = result["comparison"]
    if comparison:
        console.print(
            f"Δr = {comparison['effect']:+.4f}, 95 % CI [{comparison['ci_low']:+.4f}, "
            f"{comparison['ci_high']:+.4f}], p = {comparison['p_value']:.4f}",
            highlight=False,
        )
    console.print(f"champion is now version {result['promoted']}", highlight=False)


@app.command()
def rollback(
    ctx: typer.Context,
    approved_by: ApprovedBy = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "manual rollback",
    as_json: AsJson = False,
) -> None:
    """Restore the champion the current one replaced."""
    from emily.mlops import lifecycle

    with _own_stdout():
        record = lifecycle.rollback(settings_of(ctx), approved_by=approved_by, reason=reason)
    if as_json:
        _print(record)
        return
    console.print(
        f"champion is version {record['version']} again (was {record['previous']})",
        highlight=False,
    )


@app.command()
def predict(
    ctx: typer.Context,
    input_file: Annotated[
        Path, typer.Option("--input", help='JSON lines, one {"text": ...} per line ("-": stdin).')
    ],
    model: Annotated[
        str, typer.Option("--model", help="NAME@ALIAS, NAME/VERSION or @ALIAS.")
    ] = "@champion",
) -> None:
    """Appraise texts: one {"text", "valence", "model_version"} JSON line per input line."""
    from emily.jsonio import read_json_lines
    from emily.mlops import lifecycle

    settings = settings_of(ctx)
    path = Path("/dev/stdin") if str(input_file) == "-" else input_file
    texts: list[str] = []
    for row, value in read_json_lines(path, EmilyError, field="text"):
        if not isinstance(value, dict) or not isinstance(value.get("text"), str):
            raise EmilyError('each line must be {"text": "..."}', field="text", row=row)
        if not value["text"].strip():
            raise EmilyError("empty text", field="text", row=row)
        texts.append(value["text"])
    if not texts:
        raise EmilyError(f"{path} holds no texts", field="input")
    ref = (
        model
        if "@" not in model or not model.startswith("@")
        else (f"{settings.mlops.model_name}{model}")
    )
    with _own_stdout():
        values, version = lifecycle.predict(settings, ref, texts)
    for text, valence in zip(texts, values, strict=True):
        sys.stdout.write(
            json.dumps({"text": text, "valence": round(valence, 6), "model_version": version})
            + "\n"
        )


@app.command()
def lineage(
    ctx: typer.Context,
    version: Annotated[int, typer.Argument(help="Model version.")],
    as_json: AsJson = False,
) -> None:
    """Data hashes → run → version → aliases, with every alias move."""
    from emily.mlops import lifecycle

    with _own_stdout():
        result = lifecycle.lineage(settings_of(ctx), version)
    if as_json:
        _print(result)
        return
    data = result["data"]
    console.print(
        f"[bold]data[/]     lexicon md5 {data['md5'].get('lexicon')}  ({escape(str(data['url']))})"
    )
    console.print(f"[bold]code[/]     git {result['code']['git_commit']}")
    console.print(f"[bold]run[/]      {result['run']['id']}  params {result['run']['params']}")
    console.print(
        f"[bold]version[/]  {result['version']}  aliases {', '.join(result['aliases']) or '—'}"
    )
    for record in result["audit"]:
        console.print(
            f"  {record['at']}  {record['action']:<8} {record['alias']} → v{record['version']}"
            f" (from {record['previous']}) by {escape(str(record['by']))}",
            highlight=False,
        )


@app.command("eval-cognition")
def eval_cognition(
    ctx: typer.Context,
    prompt_alias: Annotated[
        str | None,
        typer.Option("--prompt-alias", help="Prompt version by alias (default: production)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the first N stimuli.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Evaluate the cognition prompt over the fixed stimulus set with mlflow.genai.evaluate:
    structured-output validity, known policies, deadline, agreement with the EFE choice."""
    from emily.agents.evaluation import evaluate_cognition, load_stimuli

    settings = settings_of(ctx)
    total = min(limit or 10**9, len(load_stimuli().items))
    with progress(err_console, transient=True) as bar:
        task = bar.add_task("turns", total=total)
        result = evaluate_cognition(
            settings,
            alias=prompt_alias,
            limit=limit,
            progress=lambda n: bar.update(task, advance=n),
        )
    if as_json:
        _print(result)
        return
    table = Table(title=f"{escape(result['prompt'])} on stimuli {result['stimuli_version']}")
    table.add_column("scorer")
    table.add_column("mean", justify="right")
    for name, value in sorted(result["metrics"].items()):
        table.add_row(escape(name), f"{value:.3f}")
    console.print(table)
    console.print(f"MLflow run {result['run_id']} (experiment {result['experiment']})")


WindowOption = Annotated[
    int | None,
    typer.Option("--window", min=10, help="Recent turns checked (default: mlops.monitor_window)."),
]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


@app.command()
def monitor(
    ctx: typer.Context,
    window: WindowOption = None,
    reference: Annotated[
        int | None,
        typer.Option("--reference", min=10, help="Turns before the window used as reference."),
    ] = None,
    as_json: AsJson = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit code 2 when any check alerts.")
    ] = False,
) -> None:
    """One monitoring pass over the recent turns: stimulus, prediction and feature drift, the
    champion's error on labelled turns, data quality. Logged to MLflow, written as Prometheus
    gauges, alerts as structured log events."""
    from emily.mlops.monitoring import monitor as run

    with _own_stdout():
        report = run(settings_of(ctx), window=window, reference=reference)
    if as_json:
        _print(report.model_dump(mode="json"))
    else:
        table = Table(
            "check",
            "statistic",
            "p",
            "threshold",
            "n ref",
            "n cur",
            "status",
            title=f"monitor: {report.model} (champion {report.champion or 'none'})",
        )
        for c in report.checks:
            status = (
                f"[dim]skipped: {escape(c.skipped)}[/]"
                if c.skipped
                else ("[red]ALERT[/]" if c.alert else "[green]ok[/]")
            )
            table.add_row(
                c.name,
                _fmt(c.statistic),
                _fmt(c.p_value),
                _fmt(c.threshold),
                str(c.n_reference),
                str(c.n_current),
                status,
            )
        console.print(table)
        if report.run_id:
            console.print(f"logged to MLflow run {report.run_id}; gauges: {report.metrics_file}")
    if strict and report.alerts:
        raise typer.Exit(code=2)


ab_app = sub_app("A/B test of the appraisal model (champion vs challenger) in the agent loop.")
app.add_typer(ab_app, name="ab")


@ab_app.command("report")
def ab_report(
    ctx: typer.Context,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="Default: the one with the newest turn.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Effect (challenger − champion mean absolute error, per thread) with its always-valid
    confidence interval and p-value (mSPRT), the sample size still needed, and a decision."""
    from emily.mlops.abtest.report import ab_report as run

    result, context = run(settings_of(ctx), experiment)
    if as_json:
        _print({**context, **result.to_dict()})
        return
    ci = result.ci
    interval = f"[{ci.low:+.4f}, {ci.high:+.4f}]" if ci else "-"
    console.print(
        f"experiment {escape(context['experiment'])}: threads champion "
        f"{context['threads']['champion']}, challenger {context['threads']['challenger']}\n"
        f"mean abs error: champion {_fmt(result.mean_champion)}, challenger "
        f"{_fmt(result.mean_challenger)}; effect {_fmt(result.effect)} "
        f"{int(100 * (1 - result.alpha))}% CI {interval}; always-valid p {result.p_value:.3g}\n"
        f"samples still needed per arm: {result.samples_still_needed}\n"
        f"decision: [bold]{result.decision}[/] ({escape(result.reason)})",
        highlight=False,
    )


@app.command()
def watch(ctx: typer.Context, window: WindowOption = None, as_json: AsJson = False) -> None:
    """One pass of drift-triggered retraining: monitor, roll back a degraded champion, retrain
    on new labelled data when drift alerts, compare, promote or keep (see `emily mlops
    --help`). Safe to run from a timer: a second pass at the same time does nothing."""
    from emily.mlops.watch import watch_once

    settings = settings_of(ctx)
    with _repro_progress("watch") as on_stage:
        decision = watch_once(settings, window=window, on_stage=on_stage)
    if as_json:
        _print(decision.model_dump(mode="json"))
        return
    console.print(
        f"[bold]{decision.action}[/]: {escape(decision.reason)}\n"
        f"champion: v{decision.champion_before} → v{decision.champion_after}",
        highlight=False,
    )
