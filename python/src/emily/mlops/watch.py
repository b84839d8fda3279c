"""``emily mlops watch``: one pass of drift-triggered retraining (a timer runs it in production).

A pass, under an exclusive lock (a second pass at the same time returns ``busy`` at once):

1. **Monitor** (``emily.mlops.monitoring``): drift of the stimuli and of the predictions, the
   champion's error on labelled turns.
2. **Rollback** when the champion's monitored error is past its threshold and it replaced an
   earlier champion (``previous_champion`` tag): the alias moves back, with the evidence.
3. **A/B** (``mlops.watch_ab``): a challenger the watch put under test is promoted or dropped on
   the experiment's decision (``emily mlops ab report``), or left running while inconclusive.
4. **Retrain** on drift: the labelled turns whose texts no training data has yet are written to
   ``data/extra/`` of the pipeline (a dependency of its ``prepare`` stage), ``dvc repro``
   trains and evaluates, the new version is registered as ``challenger`` (``emily mlops
   train``), compared with the champion on the held-out split (on its rows of the new data
   first: ``offline_gate``), and promoted (or, with ``watch_ab``, put under an A/B test) only
   when better; otherwise kept out, with the reason.

Every decision is a structured ``watch_decision`` log event, tags on the monitoring run and, when a
version is involved, tags on that version. Safety: aliases move only through single alias calls at
the very end of a step (``emily.mlops.promotion``), so a pass that crashes or is killed midway
leaves them as they were; new data already written stays (it is data) and the next pass trains on
it again. Running a pass twice changes nothing the second time: no new labelled text, no
retraining, and a registered run is not registered again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from emily.errors import EmilyError
from emily.mlops.monitoring import MonitorReport, monitor
from emily.mlops.turns import Turn, labelled_since
from emily.telemetry.logs import get_logger

if TYPE_CHECKING:
    from emily.config import Settings
    from emily.mlops.pipeline.layout import Layout
    from emily.mlops.promotion import Comparison

log = get_logger("mlops.watch")

WATCHER = "emily-watch"
EXTRA_PREFIX = "watch-"
AB_STAGE_TAG = "watch_stage"

Action = Literal[
    "busy",
    "nothing",
    "rolled-back",
    "drift-without-data",
    "promoted",
    "kept",
    "refused",
    "ab-started",
    "ab-running",
    "ab-promoted",
    "ab-kept",
]


class WatchDecision(BaseModel):
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    action: Action
    reason: str
    champion_before: int | None = None
    champion_after: int | None = None
    challenger: int | None = None
    new_rows: int = 0
    data_file: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    monitor: MonitorReport | None = None


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[bool]:
    """``True`` while this process holds the lock on ``path``; ``False`` when another does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_path(settings: Settings) -> Path:
    return settings.state_dir / "locks" / "mlops-watch.lock"


# -- new data ------------------------------------------------------------------------------------
def known_texts(layout: Layout) -> set[str]:
    """Texts the training data has already: the prepared dataset's and the extra data's (read
    as ``prepare`` reads them, so a file that stage would refuse is refused here too, naming
    its line)."""
    from emily.mlops.pipeline.dataset import DatasetError, read, read_extra

    known = {row.token for row in read_extra(layout.extra)}
    if layout.lexicon.is_file():
        try:
            known.update(read(layout.lexicon)["token"])
        except DatasetError:  # unreadable: the retraining rebuilds it; the extra data decides
            log.warning("watch_dataset_unreadable", path=str(layout.lexicon))
    return known


def new_rows(turns: list[Turn], known: set[str]) -> list[dict[str, Any]]:
    """One row per text not in ``known``: its text and human ratings (the latest turn's)."""
    rows: dict[str, dict[str, Any]] = {}
    for turn in turns:
        ratings = turn.ratings
        if ratings and turn.text not in known:
            rows[turn.text] = {"text": turn.text, "ratings": ratings}
    return list(rows.values())


def register_data(extra_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` as a new JSONL file (atomically: a reader never sees half a file), in text
    order and named by its content: the same rows are the same file, whenever and in whatever
    order the turns arrived, so DVC recognises a dataset it trained on before (its run cache
    restores that training instead of repeating it)."""
    extra_dir.mkdir(parents=True, exist_ok=True)
    ordered = sorted(rows, key=lambda r: str(r["text"]))
    body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in ordered)
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    path = extra_dir / f"{EXTRA_PREFIX}{digest}.jsonl"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(body, "utf-8")
    temporary.replace(path)
    return path


# -- recording -----------------------------------------------------------------------------------
def _record(settings: Settings, decision: WatchDecision) -> WatchDecision:
    log.info(
        "watch_decision",
        action=decision.action,
        reason=decision.reason,
        champion_before=decision.champion_before,
        champion_after=decision.champion_after,
        challenger=decision.challenger,
        new_rows=decision.new_rows,
    )
    run_id = decision.monitor.run_id if decision.monitor else None
    if run_id is None:
        return decision
    from emily.mlops.tracking import connect

    try:
        client = connect(settings)
        client.set_tag(run_id, "emily.watch.last_action", decision.action)
        client.set_tag(run_id, "emily.watch.last_reason", decision.reason[:4000])
        client.log_dict(
            run_id,
            decision.model_dump(mode="json", exclude={"monitor"}),
            f"watch/{decision.at:%Y%m%dT%H%M%S%fZ}.json",
        )
        if decision.challenger is not None:
            client.set_model_version_tag(
                settings.mlops.model_name,
                str(decision.challenger),
                "watch_decision",
                f"{decision.action}: {decision.reason}"[:4000],
            )
    except Exception as exc:  # the decision stands; only its record failed
        log.warning("watch_not_recorded", error=str(exc))
    return decision


# -- the pass ------------------------------------------------------------------------------------
def watch_once(
    settings: Settings,
    *,
    window: int | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> WatchDecision:
    with exclusive(lock_path(settings)) as held:
        if not held:
            return WatchDecision(action="busy", reason="another watch pass holds the lock")
        report = monitor(settings, window=window)
        return _record(settings, _decide(settings, report, on_stage))


def _aliases(settings: Settings) -> tuple[Any, Any]:
    """The versions ``champion`` and ``challenger`` name now (``None`` where unset)."""
    from emily.mlops import registry
    from emily.mlops.tracking import connect

    client = connect(settings)
    name = settings.mlops.model_name
    return (
        registry.by_alias(client, name, registry.CHAMPION),
        registry.by_alias(client, name, registry.CHALLENGER),
    )


def _decide(
    settings: Settings, report: MonitorReport, on_stage: Callable[[str], None] | None
) -> WatchDecision:
    from emily.mlops import lifecycle

    champion, challenger = _aliases(settings)
    before = champion.version if champion else None
    error = report.check("champion_error")
    if error.alert and champion is not None and "previous_champion" in champion.tags:
        reason = (
            f"champion v{champion.version} errs {error.statistic:.3f} on {error.n_current} "
            f"labelled turns, past its threshold {error.threshold:.3f}"
        )
        record = lifecycle.rollback(settings, approved_by=WATCHER, reason=reason)
        return WatchDecision(
            action="rolled-back",
            reason=reason,
            champion_before=before,
            champion_after=int(record["version"]),
            evidence={"champion_error": error.model_dump()},
            monitor=report,
        )
    under_test = challenger is not None and challenger.tags.get(AB_STAGE_TAG) == "ab"
    if settings.mlops.watch_ab and under_test:
        return _conclude_ab(settings, report, before, challenger.version)
    drifting = [c.name for c in report.checks if c.alert and c.name != "data_quality"]
    if not drifting:
        return WatchDecision(
            action="nothing",
            reason="no drift, no error alert",
            champion_before=before,
            champion_after=before,
            monitor=report,
        )
    return _retrain(settings, report, drifting, before, on_stage)


def _retrain(
    settings: Settings,
    report: MonitorReport,
    drifting: list[str],
    before: int | None,
    on_stage: Callable[[str], None] | None,
) -> WatchDecision:
    """Register new labelled data (when there is enough), train when the pipeline has work to
    do (new data, or a run a crash or failure interrupted), then decide on the challenger."""
    from emily.mlops import lifecycle, versioning

    layout = lifecycle.layout_of(settings)
    extra = layout.extra
    rows = new_rows(labelled_since(settings, None), known_texts(layout))
    evidence: dict[str, Any] = {"drifting": drifting}
    enough = len(rows) >= settings.mlops.watch_min_labelled
    if not enough and not versioning.out_of_date(settings, layout):
        return WatchDecision(
            action="drift-without-data",
            reason=f"{', '.join(drifting)} alerted, but only {len(rows)} new labelled texts "
            f"(a retraining needs {settings.mlops.watch_min_labelled})",
            champion_before=before,
            champion_after=before,
            evidence=evidence,
            monitor=report,
        )
    path = register_data(extra, rows) if enough else None
    common: dict[str, Any] = {
        "champion_before": before,
        "new_rows": len(rows) if enough else 0,
        "data_file": str(path) if path else None,
        "monitor": report,
    }
    try:
        trained = lifecycle.train(settings, trained_by=WATCHER, on_stage=on_stage)
    except EmilyError as exc:  # e.g. the evaluation gate: nothing was registered
        return WatchDecision(
            action="refused",
            reason=f"retraining failed: {exc}",
            champion_after=before,
            evidence=evidence,
            **common,
        )
    version = int(trained["version"])
    evidence["trained"] = {k: trained.get(k) for k in ("version", "registered", "metrics")}
    if trained.get("champion"):
        return WatchDecision(
            action="promoted",
            reason="the first registered model is the champion",
            champion_after=version,
            challenger=version,
            evidence=evidence,
            **common,
        )
    if version == before:
        return WatchDecision(
            action="nothing",
            reason=f"the pipeline's model is v{version}, the champion already",
            champion_after=before,
            evidence=evidence,
            **common,
        )
    comparison, gate = offline_gate(settings)
    if comparison is None or not comparison.better:
        _drop_challenger(settings, version)
        return WatchDecision(
            action="kept",
            reason=f"v{version} not promoted: {gate}",
            champion_after=before,
            challenger=version,
            evidence={**evidence, "comparison": comparison.as_dict() if comparison else None},
            **common,
        )
    evidence["comparison"] = comparison.as_dict()
    if settings.mlops.watch_ab:
        _tag(settings, version, AB_STAGE_TAG, "ab")
        return WatchDecision(
            action="ab-started",
            reason=f"v{version} passed the offline comparison ({gate}); an A/B period decides",
            champion_after=before,
            challenger=version,
            evidence=evidence,
            **common,
        )
    promoted = lifecycle.promote(settings, approved_by=WATCHER, comparison=comparison)
    return WatchDecision(
        action="promoted",
        reason=f"v{version} after drift ({', '.join(drifting)}): {gate}",
        champion_after=int(promoted["promoted"]),
        challenger=version,
        evidence=evidence,
        **common,
    )


def offline_gate(settings: Settings) -> tuple[Comparison | None, str]:
    """The held-out comparison a drift-triggered challenger wins, and what was compared; the
    comparison is ``None`` or not ``better`` when it loses.

    It wins either on the held-out rows of the new data (``extra``: the labelled turns, the
    traffic that drifted) without being significantly worse on the rest, or on the whole split
    without being significantly worse on the new data. The first way is needed because on the
    whole split a few dozen new rows drown in a thousand old ones: a model that fixes chat text
    and keeps words as they were shows almost no change there. The second keeps the usual
    criterion where the new held-out rows are too few to tell."""
    from emily.mlops import lifecycle

    slices = lifecycle.compare_aliases_on(settings, ["extra", "vader", None])
    new, overall = slices["extra"], slices[None]
    old = slices["vader"] if new is not None else None
    if new is None and overall is None:
        return None, "no champion and challenger to compare (or too few held-out rows)"
    named = (
        ("on the new data", new),
        ("on the earlier data", old),
        ("on the whole split", overall),
    )
    detail = "; ".join(f"{where}: {c.sentence()}" for where, c in named if c is not None)

    def worse(comparison: Comparison | None) -> bool:
        return comparison is not None and comparison.ci_high < 0.0

    if new is not None and new.better and not worse(old):
        return new, detail
    if overall is not None and overall.better and not worse(new):
        return overall, detail
    return None, f"not better where it must be ({detail})"


def _conclude_ab(
    settings: Settings, report: MonitorReport, before: int | None, challenger: int
) -> WatchDecision:
    from emily.mlops import lifecycle
    from emily.mlops.abtest.assignment import experiment_name
    from emily.mlops.abtest.report import ab_report

    def decision(action: Action, reason: str, after: int | None, **extra: Any) -> WatchDecision:
        return WatchDecision(
            action=action,
            reason=reason,
            champion_before=before,
            champion_after=after,
            challenger=challenger,
            monitor=report,
            **extra,
        )

    # The experiment of these two versions, not whichever stored a turn last (another model's).
    name = settings.mlops.model_name
    experiment = experiment_name(f"{name}/{before}", f"{name}/{challenger}")
    try:
        result, context = ab_report(settings, experiment)
    except EmilyError as exc:
        return decision("ab-running", f"A/B period: {exc}", before)
    evidence = {"ab": {**context, **result.to_dict()}}
    if result.decision == "promote":
        from emily.mlops.promotion import PromotionRefusedError

        comparison, gate = offline_gate(settings)
        if comparison is None or not comparison.better:
            reason = f"the A/B test favours v{challenger} ({result.reason}), but {gate}"
            return decision("refused", reason, before, evidence=evidence)
        try:
            promoted = lifecycle.promote(settings, approved_by=WATCHER, comparison=comparison)
        except PromotionRefusedError as exc:  # the held-out gate still applies
            reason = f"the A/B test favours v{challenger} ({result.reason}), but {exc}"
            return decision("refused", reason, before, evidence=evidence)
        return decision("ab-promoted", result.reason, int(promoted["promoted"]), evidence=evidence)
    if result.decision == "keep":
        _drop_challenger(settings, challenger)
        return decision("ab-kept", result.reason, before, evidence=evidence)
    return decision("ab-running", result.reason, before, evidence=evidence)


def _tag(settings: Settings, version: int, key: str, value: str) -> None:
    from emily.mlops.tracking import connect

    connect(settings).set_model_version_tag(settings.mlops.model_name, str(version), key, value)


def _drop_challenger(settings: Settings, version: int) -> None:
    """A challenger that lost leaves the ``challenger`` alias (the A/B test stops with it)."""
    from emily.mlops import registry
    from emily.mlops.tracking import connect

    client = connect(settings)
    name = settings.mlops.model_name
    current = registry.by_alias(client, name, registry.CHALLENGER)
    if current is not None and current.version == version:
        client.delete_registered_model_alias(name, registry.CHALLENGER)
