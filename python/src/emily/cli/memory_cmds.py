"""``emily memory ...``: add, ingest, search, stats, maintain, backup, restore, migrate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from emily.cli import memory_bench_cmds
from emily.cli.context import settings_of, sub_app
from emily.errors import EmilyError
from emily.memory.errors import InvalidEpisodeError
from emily.ui import escape, progress

if TYPE_CHECKING:
    from emily.config import Settings
    from emily.memory.models import EpisodeLimits, SearchResult

console = Console()
err_console = Console(stderr=True)

app = sub_app("Episodic memory: add, ingest, search, maintain, back up.")


def _settings(ctx: typer.Context) -> Settings:
    settings: Settings = settings_of(ctx)
    return settings


def _parse_time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidEpisodeError(f"not an ISO-8601 timestamp: {value!r}", field=field) from exc
    if moment.tzinfo is None:
        raise InvalidEpisodeError("timestamp needs a UTC offset, e.g. +00:00", field=field)
    return moment


def _parse_json_object(value: str | None, field: str) -> dict[str, Any] | None:
    from emily.jsonio import loads_bounded

    if value is None:
        return None
    try:
        parsed = loads_bounded(value)
    except json.JSONDecodeError as exc:
        raise InvalidEpisodeError(f"malformed JSON: {exc.msg}", field=field) from exc
    except ValueError as exc:  # nested too deeply, or an integer too long to convert
        raise InvalidEpisodeError(str(exc), field=field) from exc
    if not isinstance(parsed, dict):
        raise InvalidEpisodeError("must be a JSON object", field=field)
    return parsed


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Create or update the schema, the app role's grants and the partitions ahead."""
    from emily.memory.migrations import migrate as run_migrations

    applied = run_migrations(_settings(ctx))
    console.print(f"schema up to date (applied: {applied or 'nothing new'})")


@app.command()
def add(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="What happened.")],
    valence: Annotated[float, typer.Option(help="Valence in [-1, 1].")],
    arousal: Annotated[float, typer.Option(help="Arousal in [-1, 1].")],
    dominance: Annotated[float, typer.Option(help="Dominance in [-1, 1].")],
    at: Annotated[str | None, typer.Option(help="ISO-8601 time with offset (now).")] = None,
    context: Annotated[str | None, typer.Option(help="JSON object of context.")] = None,
) -> None:
    """Remember one episode (its embedding is computed by the configured embedder)."""
    from emily.memory.store import MemoryStore

    episode = {
        "content": text,
        "occurred_at": _parse_time(at, "at") or datetime.now(UTC),
        "affect": [valence, arousal, dominance],
        "context": _parse_json_object(context, "context") or {},
    }
    with MemoryStore(_settings(ctx)) as store:
        new_id = store.add(episode)
    console.print(f"added episode {new_id}")


def _count_valid(path: Path, limits: EpisodeLimits) -> int:
    from emily.memory.jsonl import read_episodes

    return sum(1 for _ in read_episodes(path, limits))


@app.command()
def ingest(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSONL file, one episode per line.")],
    batch_size: Annotated[int, typer.Option(min=1, help="Episodes per atomic batch.")] = 500,
) -> None:
    """Load episodes from JSONL. The whole file is validated first (an error names the line and
    nothing is written); then each batch is written atomically. Episodes already stored are
    skipped, so a file can be ingested again (after a failure, say) without duplicates."""
    from emily.memory.jsonl import read_episodes
    from emily.memory.models import Episode, EpisodeLimits
    from emily.memory.store import MemoryStore

    settings = _settings(ctx)
    # Validation needs no database: a bad file fails fast, before anything is opened.
    total = _count_valid(file, EpisodeLimits.of(settings.database))
    written = new = batches = 0
    committed_through = 0  # the last line of the last committed batch
    try:
        # Opened before the bar starts: a missing schema is then one line, not a bar and a line.
        with MemoryStore.open(settings) as store, progress(err_console) as bar:
            task = bar.add_task("ingest", total=total)
            batch: list[Episode] = []
            lines: list[int] = []

            def flush() -> None:
                nonlocal written, new, batches, committed_through
                result = store.add_batch(batch, batch_row_offset=lines[0])
                written += len(batch)
                new += result.new_count
                batches += 1
                committed_through = lines[-1]
                # One line per committed batch, so a caller can tell exactly what is durable.
                console.print(
                    f"committed batch {batches}: lines {lines[0]}-{lines[-1]}, "
                    f"{result.new_count} new, {result.present_count} already present "
                    f"({written} of {total})"
                )
                bar.advance(task, len(batch))
                batch.clear()
                lines.clear()

            for lineno, episode in read_episodes(file, EpisodeLimits.of(settings.database)):
                batch.append(episode)
                lines.append(lineno)
                if len(batch) >= batch_size:
                    flush()
            if batch:
                flush()
    except EmilyError as exc:
        if not committed_through:
            raise
        raise type(exc)(
            exc.message,
            field=exc.field,
            row=exc.row,
            hint=f"lines 1-{committed_through} are committed; ingesting the file again skips "
            "them, so fix the cause and re-run",
        ) from exc
    console.print(
        f"ingested {written} episodes in {batches} batches: "
        f"{new} new, {written - new} already present"
    )


def _result_row(result: SearchResult) -> dict[str, Any]:
    from emily.memory.rendering import clip_depth

    # The store clips stored contexts already; clipping again keeps any SearchResult printable.
    row = result.model_dump(mode="json", exclude={"context"})
    row["context"] = clip_depth(result.context)
    return row


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(help="Text to search for.")] = None,
    k: Annotated[int, typer.Option(min=1, max=1000, help="Results wanted.")] = 10,
    mode: Annotated[str, typer.Option(help="semantic, affective or hybrid.")] = "semantic",
    affect: Annotated[
        str | None, typer.Option(help="Affect to match: 'valence,arousal,dominance'.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Only episodes at or after (ISO).")] = None,
    until: Annotated[str | None, typer.Option(help="Only episodes before (ISO).")] = None,
    min_valence: Annotated[float | None, typer.Option(help="Lowest valence.")] = None,
    max_valence: Annotated[float | None, typer.Option(help="Highest valence.")] = None,
    min_arousal: Annotated[float | None, typer.Option(help="Lowest arousal.")] = None,
    max_arousal: Annotated[float | None, typer.Option(help="Highest arousal.")] = None,
    context: Annotated[str | None, typer.Option(help="JSON object the context contains.")] = None,
    semantic_weight: Annotated[float, typer.Option(help="Hybrid weight of meaning.")] = 0.7,
    ef_search: Annotated[int | None, typer.Option(help="hnsw.ef_search for this query.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Recall episodes by meaning, affect or both."""
    from emily.memory.store import MemoryStore, Mode

    if mode not in ("semantic", "affective", "hybrid"):
        raise InvalidEpisodeError(f"unknown mode {mode!r}", field="mode")
    affect_values = None
    if affect is not None:
        try:
            affect_values = [float(part) for part in affect.split(",")]
        except ValueError as exc:
            raise InvalidEpisodeError("expected three numbers", field="affect") from exc
    mode_value: Mode = mode  # type: ignore[assignment]
    with MemoryStore(_settings(ctx)) as store:
        results = store.search(
            query,
            affect=affect_values,
            mode=mode_value,
            k=k,
            since=_parse_time(since, "since"),
            until=_parse_time(until, "until"),
            min_valence=min_valence,
            max_valence=max_valence,
            min_arousal=min_arousal,
            max_arousal=max_arousal,
            context=_parse_json_object(context, "context"),
            semantic_weight=semantic_weight,
            ef_search=ef_search,
        )
    if as_json:
        typer.echo(json.dumps([_result_row(r) for r in results], indent=2))
        return
    table = Table("sim", "when", "v/a/d", "content", title=f"{mode} search")
    for r in results:
        table.add_row(
            f"{r.similarity:.3f}",
            r.occurred_at.isoformat(timespec="minutes"),
            "/".join(f"{x:+.2f}" for x in r.affect.as_list()),
            escape(r.content[:100]),
        )
    console.print(table)


@app.command()
def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Rows, partitions, table and index sizes, dead tuples."""
    from emily.memory import maintenance

    result = maintenance.stats(_settings(ctx))
    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    table = Table("partition", "rows", "table", "indexes", "dead")
    for p in result.partitions:
        table.add_row(
            escape(p.name),
            str(p.rows),
            _size(p.table_bytes),
            _size(p.index_bytes),
            str(p.dead_rows),
        )
    console.print(table)
    console.print(
        f"{result.rows} rows, table {_size(result.table_bytes)}, "
        f"indexes {_size(result.index_bytes)}, bloat {result.bloat_ratio:.1%}"
    )


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)  # pragma: no cover - loop always returns


@app.command()
def maintain(
    ctx: typer.Context,
    reindex: Annotated[bool, typer.Option(help="REINDEX CONCURRENTLY the HNSW indexes.")] = False,
    retention_months: Annotated[
        int | None, typer.Option(min=1, help="Drop partitions older than N months.")
    ] = None,
) -> None:
    """VACUUM ANALYZE, partitions ahead, optional reindex and retention."""
    from emily.memory import maintenance

    settings = _settings(ctx)
    created = maintenance.ensure_partitions_ahead(settings)
    console.print(f"partitions ahead: {escape(', '.join(created))}")
    dropped = maintenance.apply_retention(settings, retention_months)
    console.print(f"dropped partitions: {escape(', '.join(dropped)) or 'none'}")
    if reindex:
        console.print(f"reindexed: {escape(', '.join(maintenance.reindex(settings))) or 'none'}")
    maintenance.vacuum_analyze(settings)
    console.print("vacuum analyze done")


@app.command()
def backup(
    ctx: typer.Context, path: Annotated[Path, typer.Argument(help="Backup file to write.")]
) -> None:
    """Back up the database with pg_dump (custom format)."""
    from emily.memory import backup as backup_mod

    written = backup_mod.backup(_settings(ctx), path)
    console.print(f"backup written to {escape(str(written))}")


@app.command()
def restore(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Backup file to restore.")],
    into: Annotated[
        str | None, typer.Option(help="Restore into this new database instead of replacing.")
    ] = None,
) -> None:
    """Restore a backup made by `emily memory backup`."""
    from emily.memory import backup as backup_mod

    target = backup_mod.restore(_settings(ctx), path, into)
    console.print(f"restored into database {escape(target)}")


memory_bench_cmds.add_to(app)
