"""The main job behind ``emily demo``: stack up, memory seeded from the WordNet corpus, a few
searches, the scripted day through the agent loop, the report, and where to see the traces.

Only the core (PostgreSQL and episodic memory) is allowed to fail the demo. Every other part
(Redis, the LLM, MLflow, the agent loop itself) degrades with a message and the demo goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from emily.config import Settings
from emily.demo.console import summarise_act, summarise_day
from emily.demo.corpus import DERIVED, Embed, build_corpus, read_jsonl, relabel, write_jsonl
from emily.demo.day import DayEvent, day_events, demo_day, stimulus_payload
from emily.demo.drift_report import write_act
from emily.demo.report import FeatureRow, LoopRecord, SearchRow, write_report
from emily.errors import EmilyError
from emily.locator import is_external
from emily.stack.manager import Stack
from emily.stack.registry import SERVICES
from emily.telemetry.logs import get_logger

if TYPE_CHECKING:
    from emily.agents.champion import ChampionAppraiser
    from emily.demo.drift_act import ActResult

log = get_logger("demo")

# Queries of the memory part: one per retrieval mode, with an affect for the affective ones.
QUERIES: tuple[tuple[str, str, tuple[float, float, float] | None], ...] = (
    ("a joyful celebration with friends", "semantic", None),
    ("calm and safe at home", "affective", (0.6, -0.6, 0.2)),
    ("danger in the dark", "hybrid", (-0.7, 0.7, -0.5)),
)
TIGHT_COGNITION_DEADLINE_S = 0.05


@dataclass
class DemoOptions:
    corpus_size: int = 3000
    stimuli: int | None = None
    report_dir: Path = Path("demo-report")
    days: int = 120
    agents: bool = True
    train: bool = True  # train the appraisal model when no champion exists (first run)
    drift_act: bool = True  # the second act: the stream shifts, the loop retrains itself


@dataclass
class DemoResult:
    corpus_size: int
    seeded: int
    rows: int
    searches: list[SearchRow]
    records: list[LoopRecord]
    report: Path
    mlflow_url: str | None = None
    traces_url: str | None = None
    problems: list[str] = field(default_factory=list)
    act: ActResult | None = None


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


# -- stack ---------------------------------------------------------------------------------------
def start_stack(settings: Settings, console: Console, problems: list[str]) -> Stack:
    """PostgreSQL must start; the other services may fail (noted in ``problems``)."""
    stack = Stack(settings)
    for name in SERVICES:
        if name == "features":
            continue  # after the memory schema: see start_features
        if is_external(settings, name):
            console.print(f"[dim]●[/] {name:<9} external (configured)")
            continue
        with console.status(f"starting {name} …"):
            try:
                record = stack.up([name]).services[name]
            except EmilyError as exc:
                if name == "postgres":
                    raise
                problems.append(f"{name} did not start: {exc}")
                console.print(f"[yellow]●[/] {name:<9} not available: {exc}")
                continue
        console.print(f"[green]●[/] {name:<9} {record.url}")
    return stack


def start_features(settings: Settings, stack: Stack, console: Console, problems: list[str]) -> None:
    """The feature store needs the episodes table: apply its repository, then start its server
    (``emily up`` does the same). It may fail; the loop then runs without features."""
    if is_external(settings, "features"):
        console.print(f"[dim]●[/] {'features':<9} external (configured)")
        return
    from emily.provision import features_up

    with console.status("starting features …"):
        try:
            state, _ = features_up(settings, stack)
        except EmilyError as exc:
            problems.append(f"features did not start: {exc}")
            console.print(f"[yellow]●[/] {'features':<9} not available: {exc}")
            return
    console.print(f"[green]●[/] {'features':<9} {state.services['features'].url}")


def refresh_batch_views(settings: Settings, until: datetime) -> None:
    """Materialize the views no push feeds (habituation) up to ``until``: what the production
    timer (`emily features materialize --incremental`) does every few minutes. The demo's day is
    in the past, so its window is the views' TTL back from the day's last turn, not from now."""
    from emily.features.offline import materialize
    from emily.features.schema import VIEWS

    # Feast prints its progress on stdout, which is the demo's own summary: send it to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        for view in VIEWS:
            if view.push_source is None:
                materialize(
                    settings,
                    since=until - view.ttl,
                    until=until + timedelta(seconds=1),
                    views=[view.name],
                )


def feature_freshness(
    settings: Settings, records: Sequence[LoopRecord], problems: list[str]
) -> tuple[list[FeatureRow], datetime | None]:
    """The freshness panel's rows, as of the end of the day (the day is in the past)."""
    from emily.features.client import in_loop

    if not records or not in_loop(settings):
        return [], None
    from emily.features.monitor import monitor

    at = max(r.at for r in records)
    try:
        refresh_batch_views(settings, at)
        report = monitor(settings, now=at)
    except EmilyError as exc:
        problems.append(f"feature monitor: {exc}")
        return [], None
    rows = [
        FeatureRow(
            view=v.view,
            ttl_s=v.ttl_s,
            online_age_s=v.online_age_s,
            offline_age_s=v.offline_age_s,
            rows=v.rows,
            flags=v.flags,
        )
        for v in report.views
    ]
    return rows, at


# -- corpus and memory ---------------------------------------------------------------------------
def corpus_path(settings: Settings, size: int) -> Path:
    return settings.state_dir / "demo" / f"wordnet-{size}.jsonl"


def _valence_source(episodes: Sequence[dict[str, Any]]) -> str | None:
    labels = episodes[0].get("context", {}).get("labels", {}) if episodes else {}
    return str(labels.get("valence")) if labels else None


def load_corpus(
    settings: Settings,
    size: int,
    days: int,
    console: Console,
    embed: Embed,
    champion: ChampionAppraiser | None = None,
) -> list[dict[str, Any]]:
    """The cached corpus of this size, else built now (embedding is the slow part); its
    valence from the champion when there is one (a cached corpus labelled otherwise is
    relabelled from its stored embeddings)."""
    path = corpus_path(settings, size)
    valence_model = champion.appraise_many if champion is not None else None
    if path.is_file():
        episodes = read_jsonl(path)
        if len(episodes) == size:
            wanted = champion.source if champion is not None else DERIVED
            if (_valence_source(episodes) or "").split(" (")[0] != wanted.split(" (")[0]:
                relabel(episodes, embed, valence_model)
                write_jsonl(episodes, path)
            return episodes
    with _progress(console) as progress:
        task = progress.add_task("embedding WordNet glosses", total=size)
        episodes = build_corpus(
            embed,
            size=size,
            days=days,
            progress=lambda n: progress.advance(task, n),
            valence_model=valence_model,
        )
    write_jsonl(episodes, path)
    return episodes


def _marker(settings: Settings) -> Path:
    return settings.state_dir / "demo" / "seeded.json"


def _already_seeded(store: Any, settings: Settings, corpus: Sequence[dict[str, Any]]) -> int:
    """How many leading corpus episodes are in memory. Corpora of every size share a prefix
    (same hash order), so only the tail beyond what was seeded before is new."""
    marker = _marker(settings)
    if not marker.is_file():
        return 0
    try:
        seeded = int(json.loads(marker.read_text(encoding="utf-8"))["seeded"])
        last = corpus[min(seeded, len(corpus)) - 1]
    except (ValueError, KeyError, IndexError, TypeError):
        return 0
    # The marker may be stale (database restored or recreated): check the last one is there.
    hits = store.search(
        query_vector=last["embedding"],
        k=1,
        mode="semantic",
        context={"source": "wordnet", "synset": last["context"]["synset"]},
    )
    return min(seeded, len(corpus)) if hits else 0


def seed_memory(
    settings: Settings, store: Any, corpus: Sequence[dict[str, Any]], console: Console
) -> int:
    """Add the corpus episodes not yet in memory (batches of 500, one transaction each)."""
    start = _already_seeded(store, settings, corpus)
    todo = corpus[start:]
    if not todo:
        console.print(f"memory already holds the {len(corpus)}-episode corpus; not seeding again")
        return 0
    batch = 500
    with _progress(console) as progress:
        task = progress.add_task("seeding episodic memory", total=len(todo))
        for offset in range(0, len(todo), batch):
            chunk = todo[offset : offset + batch]
            store.add_many(chunk, batch_row_offset=start + offset + 1)
            progress.advance(task, len(chunk))
    marker = _marker(settings)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"seeded": len(corpus)}), encoding="utf-8")
    return len(todo)


def run_searches(store: Any, console: Console, k: int = 3) -> list[SearchRow]:
    table = Table("query", "mode", "sim.", "V/A/D", "episode", title="Episodic memory")
    rows: list[SearchRow] = []
    for query, mode, affect in QUERIES:
        results = store.search(query, k=k, mode=mode, affect=affect)
        for result in results:
            vad = tuple(result.affect.as_list())
            row = SearchRow(
                query=query,
                mode=mode,
                content=result.content,
                similarity=result.similarity,
                affect=(vad[0], vad[1], vad[2]),
            )
            rows.append(row)
            table.add_row(
                query,
                mode,
                f"{row.similarity:.3f}",
                "/".join(f"{v:+.2f}" for v in row.affect),
                row.content[:80],
            )
    console.print(table)
    return rows


# -- the scripted day ----------------------------------------------------------------------------
def _cognition_deadline(event: DayEvent) -> float | None:
    """The cognition budget of the event's turn: a tight one forces a degraded decision on
    purpose; ``None`` keeps the configured one. Passed with that one turn (its run context),
    never written into the shared settings."""
    return TIGHT_COGNITION_DEADLINE_S if event.tight_deadline else None


async def run_day(
    settings: Settings,
    events: Sequence[DayEvent],
    console: Console,
    on_turn: Callable[[LoopRecord], None] | None = None,
    appraiser: ChampionAppraiser | None = None,
) -> list[LoopRecord]:
    """Every event through the agent loop, in one new thread; raises ``ImportError`` when the
    agent package is not installed and ``EmilyError`` when the loop cannot run at all."""
    from emily.agents.loop import Agent
    from emily.agents.perception import Stimulus

    day = demo_day()
    thread_id = f"demo-{day:%Y%m%d}-{uuid.uuid4().hex[:6]}"
    records: list[LoopRecord] = []
    agent = await Agent.open(settings, appraiser=appraiser)
    try:
        with _progress(console) as progress:
            task = progress.add_task("living through the day", total=len(events))
            for index, event in enumerate(events, start=1):
                stimulus = Stimulus.model_validate(stimulus_payload(event, day))
                result = await agent.step(
                    thread_id, stimulus, cognition_deadline_s=_cognition_deadline(event)
                )
                vad = [max(-1.0, min(1.0, float(v))) for v in result.affect]
                record = LoopRecord(
                    index=index,
                    at=stimulus.at or datetime.now(UTC),
                    text=event.text,
                    valence=vad[0],
                    arousal=vad[1],
                    dominance=vad[2],
                    winner=result.layer,
                    policy=result.policy,
                    latency_ms=result.latency_ms,
                    degraded=result.degraded,
                    reason=result.degraded_reason,
                    tight_deadline=event.tight_deadline,
                    features_missing=result.features_unavailable,
                    appraised_by=result.appraised_by,
                )
                records.append(record)
                if on_turn is not None:
                    on_turn(record)
                progress.advance(task)
    finally:
        await agent.close()
    return records


# -- tracing ---------------------------------------------------------------------------------------
def _traces_link(settings: Settings) -> tuple[str | None, str | None]:
    from emily import locator
    from emily.telemetry.mlflow_rest import ensure_experiment

    try:
        server = locator.mlflow(settings)
        experiment = ensure_experiment(server, settings.telemetry.mlflow_experiment)
    except EmilyError:
        return None, None
    return server.uri, f"{server.uri}/#/experiments/{experiment}/traces"


# -- the whole job ---------------------------------------------------------------------------------
def run_demo(settings: Settings, options: DemoOptions, console: Console) -> DemoResult:
    from emily.demo.champion import ensure_champion, register_prompt_or_note
    from emily.memory.embedding.factory import create_embedder
    from emily.memory.store import MemoryStore
    from emily.telemetry.tracing import setup_tracing, shutdown_tracing

    problems: list[str] = []
    stack = start_stack(settings, console, problems)
    provider = setup_tracing(settings, service_name="emily-demo")
    if provider is None and settings.telemetry.enabled:
        problems.append("tracing is off: no MLflow server or OTLP endpoint answers")
    try:
        embedder = create_embedder(settings)

        def embed(texts: Sequence[str]) -> Any:
            return np.asarray(embedder.embed(list(texts)), dtype=np.float32)

        register_prompt_or_note(settings, console, problems)
        champion = ensure_champion(settings, console, problems, train=options.train, embed=embed)
        corpus = load_corpus(settings, options.corpus_size, options.days, console, embed, champion)
        # Migrations create the application role the pool connects as: run them first.
        store = MemoryStore(settings)
        store.migrate()
        start_features(settings, stack, console, problems)
        with store:
            seeded = seed_memory(settings, store, corpus, console)
            rows = store.count()
            console.print(f"episodic memory: {rows} episodes")
            searches = run_searches(store, console)
        records: list[LoopRecord] = []
        if options.agents:
            records = _day_or_problem(settings, options, console, problems, champion)
        features, features_at = feature_freshness(settings, records, problems)
        act = second_act(settings, options, console, problems) if options.agents else None
        sections = [write_act(act, options.report_dir)] if act is not None else []
        notes = [*label_notes(corpus, records), *problems]
        page = write_report(
            options.report_dir,
            records,
            searches,
            notes=notes,
            features=features,
            features_at=features_at,
            sections=sections,
        )
    finally:
        shutdown_tracing()
    mlflow_url, traces_url = _traces_link(settings)
    return DemoResult(
        corpus_size=len(corpus),
        seeded=seeded,
        rows=rows,
        searches=searches,
        records=records,
        report=page,
        mlflow_url=mlflow_url,
        traces_url=traces_url,
        problems=problems,
        act=act,
    )


def second_act(
    settings: Settings, options: DemoOptions, console: Console, problems: list[str]
) -> ActResult | None:
    """The second act (``emily.demo.drift_act``); a part it needs that fails (MLflow, DVC) is
    a problem in the report, as for every optional part."""
    if not options.drift_act:
        return None
    from emily.demo.drift_act import run_act

    console.rule("second act: the stream shifts to chat text")
    try:
        act = run_act(settings, console)
    except (EmilyError, ImportError) as exc:
        problems.append(f"the second act could not run: {exc}")
        console.print(f"[yellow]second act not available:[/] {exc}")
        return None
    summarise_act(act, console)
    return act


def label_notes(corpus: Sequence[dict[str, Any]], records: Sequence[LoopRecord]) -> list[str]:
    """Which labels are trained on human ratings and which are derived."""
    valence = _valence_source(corpus) or DERIVED
    notes = [
        f"Corpus: {len(corpus)} WordNet glosses. Valence labels: {valence}. Arousal and "
        "dominance labels: derived (embedding projections on seed-word anchor directions; no "
        "human ratings exist for them here)."
    ]
    if records:
        counts: dict[str, int] = {}
        for r in records:
            counts[r.appraised_by] = counts.get(r.appraised_by, 0) + 1
        by = ", ".join(f"{name} ({n})" for name, n in sorted(counts.items()))
        notes.append(f"Turns appraised by: {by}.")
    return notes


def _day_or_problem(
    settings: Settings,
    options: DemoOptions,
    console: Console,
    problems: list[str],
    champion: ChampionAppraiser | None = None,
) -> list[LoopRecord]:
    events = day_events(options.stimuli)
    try:
        records = asyncio.run(run_day(settings, events, console, appraiser=champion))
    except ImportError as exc:
        problems.append(f"the agent loop is not available ({exc}); memory part only")
        console.print(f"[yellow]agent loop not available:[/] {exc}")
        return []
    except EmilyError as exc:
        problems.append(f"the agent loop could not run: {exc}")
        console.print(f"[yellow]agent loop could not run:[/] {exc}")
        return []
    summarise_day(records, console)
    return records
