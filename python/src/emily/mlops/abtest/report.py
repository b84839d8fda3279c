"""``emily mlops ab report``: the A/B experiment's effect, from the turns it stored.

The unit of analysis is the thread, the unit the experiment randomises: each thread's outcome is
the mean absolute appraisal error of its labelled turns (turns of one thread share a
conversation, so treating them as independent would make the interval too narrow). The
statistics are the always-valid mSPRT of :mod:`emily.mlops.abtest.statistics`, so the report can
be read after every turn without inflating the false-positive rate.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from emily.errors import EmilyError
from emily.mlops.abtest.statistics import ABResult, analyse
from emily.mlops.turns import Turn, experiment_turns, experiments

if TYPE_CHECKING:
    from emily.config import Settings


def per_thread(turns: list[Turn]) -> dict[str, dict[str, float]]:
    """arm → thread → mean appraisal error of the thread's labelled turns."""
    sums: dict[tuple[str, str], list[float]] = defaultdict(list)
    for turn in turns:
        arm, thread, error = turn.context.get("ab_arm"), turn.context.get("thread_id"), turn.error
        if arm in ("champion", "challenger") and thread is not None and error is not None:
            sums[(str(arm), str(thread))].append(error)
    out: dict[str, dict[str, float]] = {"champion": {}, "challenger": {}}
    for (arm, thread), errors in sums.items():
        out[arm][thread] = sum(errors) / len(errors)
    return out


def latest_experiment(settings: Settings) -> str:
    found = experiments(settings)
    if not found:
        raise EmilyError(
            "no A/B experiment has stored a turn",
            field="experiment",
            hint="set EMILY_AGENTS__AB_CHALLENGER_SHARE (e.g. 0.5) while a challenger exists",
        )
    return found[0][0]


def ab_report(settings: Settings, experiment: str | None = None) -> tuple[ABResult, dict[str, Any]]:
    """The analysis of ``experiment`` (default: the one with the newest turn) and its context
    (experiment, turns and threads per arm)."""
    name = experiment or latest_experiment(settings)
    turns = experiment_turns(settings, name)
    if not turns and experiment is not None:
        known = ", ".join(e for e, _ in experiments(settings)) or "none"
        raise EmilyError(f"no labelled turns for experiment {name!r}", hint=f"known: {known}")
    threads = per_thread(turns)
    config = settings.mlops
    result = analyse(
        list(threads["champion"].values()),
        list(threads["challenger"].values()),
        alpha=config.ab_alpha,
        power=config.ab_power,
        minimum_effect=config.ab_minimum_effect,
    )
    turns_by_arm = {
        arm: sum(1 for t in turns if t.context.get("ab_arm") == arm)
        for arm in ("champion", "challenger")
    }
    context = {
        "experiment": name,
        "unit": "thread",
        "threads": {arm: len(v) for arm, v in threads.items()},
        "turns": turns_by_arm,
    }
    return result, context
