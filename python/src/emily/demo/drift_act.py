"""The demo's second act: the stimulus stream shifts, the loop notices and retrains itself.

1. **Reset** (every run is the same act): the act's previous turns are forgotten, its new data
   removed, and its pipeline trains the first model on dictionary words (``dvc repro``; after
   the first run DVC's run cache restores it in seconds), which becomes the champion again.
2. **Words**, then **chat**: the agent loop (without the LLM) lives turns of held-out words,
   then of chat tokens, every stimulus with its human ratings. Every ``monitor_every`` turns a
   monitoring pass runs (``emily mlops monitor``), every ``watch_every`` turns a watch pass
   (``emily mlops watch``, which monitors too): the timers of production, fired by turn count.
   The watch sees the drift, waits for enough labelled turns, registers them in DVC, retrains,
   compares the challenger offline and starts an A/B period.
3. **A/B**: threads are split between champion and challenger by hash; the watch decides
   (always-valid test) to promote, keep or wait.
4. **After**: the loop goes on with the champion of the moment.

Turns of one chunk run concurrently, a few threads at once (each thread's turns in order).
The watch runs between chunks, so the loop waits for a retraining (in production the timer
runs it beside the loop).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from emily.demo.shift import (
    PARAMS,
    THREAD_PREFIX,
    WORKSPACE,
    ActPlan,
    Pools,
    act_settings,
    pools,
)
from emily.mlops.monitoring import MonitorReport
from emily.mlops.watch import WatchDecision
from emily.telemetry.logs import get_logger

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from emily.agents.loop import Agent
    from emily.config import Settings
    from emily.mlops.appraisal.lexicon import LexiconRow
    from emily.mlops.pipeline.layout import Layout
    from emily.mlops.turns import Turn

log = get_logger("demo.drift")

DEMO = "emily demo"
PHASES = ("words", "chat", "ab", "after")
STARTED = ("ab-started", "promoted")
CONCLUDED = ("ab-promoted", "ab-kept", "promoted", "kept", "refused", "rolled-back")
PROMOTED = ("promoted", "ab-promoted")


@dataclass
class Pass:
    """One monitoring pass (a watch pass when ``decision`` is set) after ``turn`` turns."""

    turn: int
    phase: str
    report: MonitorReport
    decision: WatchDecision | None = None


@dataclass
class ActResult:
    model: str
    first_version: int
    plan: ActPlan
    passes: list[Pass]
    turns: list[Turn]
    onset_turn: int
    seconds: float
    onset_to_promoted_s: float | None = None
    new_champion: int | None = None
    lineage: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    def phase_of(self, turn: Turn) -> str:
        return str(turn.context.get("thread_id", "")).removeprefix(THREAD_PREFIX).split("-")[0]

    @property
    def detected_turn(self) -> int | None:
        """The first pass after the onset whose stimulus-drift check alerted."""
        return next(
            (
                p.turn
                for p in self.passes
                if p.turn > self.onset_turn and p.report.check("stimulus_drift").alert
            ),
            None,
        )

    @property
    def decisions(self) -> list[Pass]:
        return [p for p in self.passes if p.decision is not None]

    @property
    def promotion(self) -> Pass | None:
        """The watch pass that promoted a new champion, if one did."""
        return next(
            (p for p in self.decisions if p.decision and p.decision.action in PROMOTED), None
        )

    @property
    def promoted_turn(self) -> int | None:
        return self.promotion.turn if self.promotion else None

    @property
    def ab_evidence(self) -> dict[str, Any] | None:
        """The A/B report the last watch pass that read one saw."""
        found = [
            p.decision.evidence["ab"]
            for p in self.decisions
            if p.decision is not None and "ab" in p.decision.evidence
        ]
        return found[-1] if found else None


# -- reset ---------------------------------------------------------------------------------------
def reset(act: Settings, layout: Layout, on_stage: Callable[[str], None] | None = None) -> int:
    """The act as at its start; the first model's version (champion again)."""
    from emily.memory.store import MemoryStore
    from emily.mlops import lifecycle
    from emily.mlops.promotion import reset_champion
    from emily.mlops.tracking import connect
    from emily.mlops.watch import EXTRA_PREFIX

    for path in layout.extra.glob(f"{EXTRA_PREFIX}*.jsonl"):
        path.unlink()
    store = MemoryStore(act)
    store.migrate()  # idempotent: the turns' table and the role the loop connects as
    with store:
        forgotten = store.forget_threads(THREAD_PREFIX)
    trained = lifecycle.train(act, trained_by=DEMO, on_stage=on_stage)
    version = int(trained["version"])
    reset_champion(
        connect(act),
        act.mlops.model_name,
        version,
        by=DEMO,
        reason="the demo's second act starts from the model trained on dictionary words",
    )
    log.info("drift_act_reset", model=act.mlops.model_name, version=version, forgot=forgotten)
    return version


# -- the loop ------------------------------------------------------------------------------------
def _threads(phase: str, rows: Iterable[LexiconRow], plan: ActPlan) -> list[tuple[str, LexiconRow]]:
    return [
        (f"{THREAD_PREFIX}{phase}-{index // plan.turns_per_thread}", row)
        for index, row in enumerate(rows)
    ]


async def _chunk(agent: Agent, items: Sequence[tuple[str, LexiconRow]]) -> None:
    """The chunk's threads concurrently, each thread's turns in order."""
    from emily.agents.perception import Stimulus

    by_thread: dict[str, list[LexiconRow]] = {}
    for thread, row in items:
        by_thread.setdefault(thread, []).append(row)

    async def live(thread: str, rows: list[LexiconRow]) -> None:
        for row in rows:
            stimulus = Stimulus(
                text=row.token, ratings=list(row.ratings), at=datetime.now(UTC), source="chat"
            )
            await agent.step(thread, stimulus)

    await asyncio.gather(*(live(t, rows) for t, rows in by_thread.items()))


class _Act:
    def __init__(self, act: Settings, agent: Agent, plan: ActPlan, progress: Progress) -> None:
        self.act, self.agent, self.plan = act, agent, plan
        self.progress = progress
        self.task: TaskID = progress.add_task("second act", total=None)
        self.turns = 0
        self.passes: list[Pass] = []
        self.onset = 0  # turns before the first chat turn
        self.onset_at = 0.0  # when the first chat turn began (epoch seconds)

    async def _refresh_appraisers(self) -> None:
        ab = self.agent.ab
        if ab is not None:
            await asyncio.to_thread(ab.champion.refresh)
            await asyncio.to_thread(ab.challenger.refresh)

    async def _after_chunk(self, phase: str, watch: bool) -> WatchDecision | None:
        from emily.mlops.monitoring import monitor
        from emily.mlops.watch import watch_once

        plan = self.plan
        if watch and self.turns % plan.watch_every == 0:
            self.progress.update(self.task, description=f"{phase}: watch pass …")
            decision = await asyncio.to_thread(
                watch_once,
                self.act,
                on_stage=lambda s: self.progress.update(
                    self.task, description=f"{phase}: retraining ({s}) …"
                ),
            )
            if decision.monitor is not None:
                self.passes.append(Pass(self.turns, phase, decision.monitor, decision))
            await self._refresh_appraisers()
            return decision
        if self.turns % plan.monitor_every == 0:
            report = await asyncio.to_thread(monitor, self.act)
            self.passes.append(Pass(self.turns, phase, report))
        return None

    async def phase(
        self,
        phase: str,
        rows: Iterable[LexiconRow],
        *,
        watch: bool = True,
        stop: Sequence[str] = (),
    ) -> WatchDecision | None:
        """Live ``rows`` as turns of ``phase``; the watch decision that stopped it, if any."""
        items = _threads(phase, rows, self.plan)
        size = self.plan.monitor_every
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            self.progress.update(self.task, description=f"{phase}: turns")
            await _chunk(self.agent, chunk)
            self.turns += len(chunk)
            self.progress.update(self.task, completed=self.turns)
            decision = await self._after_chunk(phase, watch)
            if decision is not None and decision.action in stop:
                return decision
        return None


async def _live(act: Settings, plan: ActPlan, stream: Pools, progress: Progress) -> _Act:
    from emily.agents.loop import Agent

    agent = await Agent.open(act)
    state = _Act(act, agent, plan, progress)
    try:
        await state._refresh_appraisers()
        await state.phase("words", stream.words)
        state.onset, state.onset_at = state.turns, time.time()
        started = await state.phase("chat", stream.chat_seen, stop=STARTED)
        unseen = itertools.cycle(stream.chat_unseen)
        if started is not None and started.action == "ab-started":
            await state.phase("ab", itertools.islice(unseen, plan.ab_max), stop=CONCLUDED)
        await state.phase("after", itertools.islice(unseen, plan.after), watch=False)
    finally:
        await agent.close()
    return state


def run_act(settings: Settings, console: Console, plan: ActPlan | None = None) -> ActResult:
    """The whole act on the demo's stack; raises ``EmilyError`` when a part it needs (MLflow,
    the pipeline) cannot run."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from emily.mlops import lifecycle
    from emily.mlops.turns import thread_turns
    from emily.mlops.workspace import open_workspace

    plan = plan or ActPlan()
    started = time.perf_counter()
    layout = open_workspace(settings.state_dir / WORKSPACE, PARAMS)
    act = act_settings(settings, layout, plan)
    with console.status("second act: the model trained on dictionary words …") as status:
        first = reset(
            act,
            layout,
            on_stage=lambda stage: status.update(f"second act: first model, {stage} …"),
        )
    console.print(f"[green]●[/] second act: {act.mlops.model_name} v{first} (words only) champion")
    stream = pools(layout, plan)
    columns = (
        TextColumn("{task.description:<34}"),
        BarColumn(),
        TextColumn("{task.completed} turns"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        state = asyncio.run(_live(act, plan, stream, progress))
    result = ActResult(
        model=act.mlops.model_name,
        first_version=first,
        plan=plan,
        passes=state.passes,
        turns=thread_turns(act, THREAD_PREFIX),
        onset_turn=state.onset,
        seconds=time.perf_counter() - started,
    )
    promoted = result.promotion.decision if result.promotion else None
    if promoted is not None and promoted.champion_after is not None:
        result.new_champion = promoted.champion_after
        result.onset_to_promoted_s = promoted.at.timestamp() - state.onset_at
        result.lineage = lifecycle.lineage(act, promoted.champion_after)
    else:
        last = result.decisions[-1].decision if result.decisions else None
        result.problems.append(
            "no new champion in the act: "
            + (f"last watch decision {last.action}: {last.reason}" if last else "no watch pass")
        )
    return result
