"""``emily mlops monitor``: one monitoring pass over the agent's recent turns.

The window is the last ``mlops.monitor_window`` turns; its reference is the
``mlops.monitor_reference`` turns before it (what the agent saw before the window), so a pass
asks "has the stream changed lately?" without a stored baseline. Checks, each with its
statistic, p-value or threshold, sample sizes and an alert flag:

* ``data_quality``: turns, labelled turns, turns without an embedding or an appraisal, degraded
  turns (counts; an empty window alerts);
* ``stimulus_drift``: MMD with a permutation p-value on the stimuli's embeddings (the embedding
  test of ``emily.drift``, calibrated in docs/bench/drift-calibration.json);
* ``prediction_drift``: KS on the appraisal's valence;
* ``champion_error``: mean absolute error of the champion's appraisal on the window's labelled
  turns against its held-out MAE (registry tag) × (1 + ``mlops.error_tolerance``);
* ``feature_drift``: the feature store's own monitor (freshness, missing values, drift against
  its baseline), when the feature store is in the loop.

Each pass is logged to MLflow (one monitoring run per model, a metric series per check, the
pass's report as an artefact), written as Prometheus gauges to a text file for node_exporter's
textfile collector, and every alert is a structured ``monitor_alert`` log event (the journal in
production). Drift tests use ``drift.monitor_alpha``: repeated passes over overlapping windows
need the stricter level the calibration chose.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from emily.errors import EmilyError
from emily.mlops.turns import Turn, recent_turns
from emily.telemetry.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlflow import MlflowClient

    from emily.config import Settings
    from emily.drift.results import DriftResult

log = get_logger("mlops.monitor")

MIN_ROWS = 10  # per side: fewer and a two-sample test says nothing useful
MIN_LABELLED = 5


class Check(BaseModel):
    name: str
    statistic: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    alert: bool = False
    n_reference: int = 0
    n_current: int = 0
    detail: str = ""
    values: dict[str, float] = Field(default_factory=dict)
    skipped: str | None = None


class MonitorReport(BaseModel):
    at: datetime
    model: str
    champion: str | None
    window: int
    reference: int
    checks: list[Check]
    run_id: str | None = None
    metrics_file: str | None = None

    @property
    def alerts(self) -> list[Check]:
        return [c for c in self.checks if c.alert]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)


def _sides(turns: list[Turn], window: int) -> tuple[list[Turn], list[Turn]]:
    return turns[:-window] if len(turns) > window else [], turns[-window:]


def data_quality(current: list[Turn]) -> Check:
    values = {
        "turns": float(len(current)),
        "labelled": float(sum(t.human_valence is not None for t in current)),
        "without_embedding": float(sum(t.embedding is None for t in current)),
        "without_appraisal": float(sum(t.appraised_valence is None for t in current)),
        "degraded": float(sum(t.degraded for t in current)),
    }
    return Check(
        name="data_quality",
        statistic=values["turns"],
        alert=not current,
        n_current=len(current),
        values=values,
        detail="no turns in the window" if not current else "",
    )


def _two_sample(
    name: str,
    reference: list[Any],
    current: list[Any],
    what: str,
    test: Callable[[Any, Any], DriftResult],
    detail: str,
) -> Check:
    """A drift check from one two-sample test of ``emily.drift`` (skipped on too few rows)."""
    if len(reference) < MIN_ROWS or len(current) < MIN_ROWS:
        return Check(
            name=name,
            n_reference=len(reference),
            n_current=len(current),
            skipped=f"{len(reference)} reference and {len(current)} current {what} "
            f"(need {MIN_ROWS})",
        )
    result = test(reference, current)
    return Check(
        name=name,
        statistic=result.statistic,
        p_value=result.p_value,
        threshold=result.alpha,
        alert=result.drift,
        n_reference=result.n_reference,
        n_current=result.n_current,
        detail=detail,
    )


def stimulus_drift(settings: Settings, reference: list[Turn], current: list[Turn]) -> Check:
    from emily.drift.embedding import mmd_test

    drift = settings.drift

    def test(ref: list[Any], cur: list[Any]) -> DriftResult:
        return mmd_test(
            np.stack(ref),
            np.stack(cur),
            alpha=drift.monitor_alpha,
            permutations=drift.mmd_permutations,
            seed=drift.seed,
            feature="stimulus_embedding",
        )

    return _two_sample(
        "stimulus_drift",
        [t.embedding for t in reference if t.embedding is not None],
        [t.embedding for t in current if t.embedding is not None],
        "embeddings",
        test,
        "MMD² (permutation p-value)",
    )


def prediction_drift(settings: Settings, reference: list[Turn], current: list[Turn]) -> Check:
    from emily.drift.report import prediction_drift as ks

    def test(ref: list[Any], cur: list[Any]) -> DriftResult:
        return ks(ref, cur, alpha=settings.drift.monitor_alpha, feature="appraised_valence")

    return _two_sample(
        "prediction_drift",
        [t.appraised_valence for t in reference if t.appraised_valence is not None],
        [t.appraised_valence for t in current if t.appraised_valence is not None],
        "appraisals",
        test,
        "KS on the appraised valence",
    )


def champion_error(
    settings: Settings, current: list[Turn], champion: str | None, held_out_mae: float | None
) -> Check:
    errors = [t.error for t in current if t.error is not None and t.appraised_by == champion]
    if champion is None or held_out_mae is None:
        return Check(name="champion_error", skipped="no champion with a held-out MAE")
    if len(errors) < MIN_LABELLED:
        return Check(
            name="champion_error",
            n_current=len(errors),
            skipped=f"{len(errors)} labelled turns appraised by {champion} (need {MIN_LABELLED})",
        )
    mae = float(np.mean(errors))
    threshold = held_out_mae * (1.0 + settings.mlops.error_tolerance)
    return Check(
        name="champion_error",
        statistic=mae,
        threshold=threshold,
        alert=mae > threshold,
        n_current=len(errors),
        values={"held_out_mae": held_out_mae},
        detail=f"{champion}: MAE on labelled turns vs held-out MAE {held_out_mae:.3f}",
    )


def feature_drift(settings: Settings) -> Check:
    from emily.features.client import in_loop

    if not in_loop(settings):
        return Check(name="feature_drift", skipped="the feature store is not in the loop")
    from emily.features.monitor import monitor as feature_monitor

    try:
        report = feature_monitor(settings)
    except Exception as exc:  # an optional check that cannot run is skipped, with its reason
        return Check(name="feature_drift", skipped=f"feature monitor failed: {exc}")
    drifting = [v.view for v in report.views if "drift" in v.flags]
    flagged = [v.view for v in report.views if v.flags]
    return Check(
        name="feature_drift",
        statistic=float(len(drifting)),
        threshold=0.0,
        alert=bool(drifting),
        n_current=len(report.views),
        values={"flagged_views": float(len(flagged))},
        detail=", ".join(drifting) or "no view drifts",
    )


def _champion(settings: Settings) -> tuple[str | None, float | None]:
    from emily.mlops import registry
    from emily.mlops.tracking import connect

    name = settings.mlops.model_name
    try:
        info = registry.by_alias(connect(settings), name, registry.CHAMPION)
    except EmilyError as exc:
        log.warning("monitor_no_registry", error=str(exc))
        return None, None
    if info is None:
        return None, None
    return f"{name}/{info.version}", info.metrics.get("model.all.mae")


def run_checks(
    settings: Settings, *, window: int | None = None, reference: int | None = None
) -> MonitorReport:
    """The checks of one pass (no logging): what ``monitor`` records."""
    config = settings.mlops
    window = window or config.monitor_window
    reference = reference or config.monitor_reference
    turns = recent_turns(settings, window + reference)
    before, current = _sides(turns, window)
    champion, mae = _champion(settings)
    checks = [
        data_quality(current),
        stimulus_drift(settings, before, current),
        prediction_drift(settings, before, current),
        champion_error(settings, current, champion, mae),
        feature_drift(settings),
    ]
    return MonitorReport(
        at=datetime.now(UTC),
        model=config.model_name,
        champion=champion,
        window=window,
        reference=reference,
        checks=checks,
    )


def metric_values(report: MonitorReport) -> dict[str, float]:
    """``monitor.<check>.<what>`` → value, for MLflow and Prometheus (finite values only)."""
    out: dict[str, float] = {}
    for check in report.checks:
        if check.skipped:
            continue
        for key, value in (
            ("statistic", check.statistic),
            ("p_value", check.p_value),
            ("threshold", check.threshold),
            ("alert", float(check.alert)),
            *check.values.items(),
        ):
            if value is not None and math.isfinite(value):
                out[f"monitor.{check.name}.{key}"] = float(value)
    return out


def _monitoring_run(client: MlflowClient, settings: Settings) -> str:
    """The model's monitoring run (created once): every pass adds a step to its series."""
    name = settings.mlops.model_name
    experiment = client.get_experiment_by_name(settings.mlops.monitor_experiment)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(settings.mlops.monitor_experiment)
    )
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`emily.monitor.model` = '{name}'", max_results=1
    )
    if runs:
        return str(runs[0].info.run_id)
    run = client.create_run(
        experiment_id, run_name=f"monitor-{name}", tags={"emily.monitor.model": name}
    )
    return str(run.info.run_id)


def log_to_mlflow(settings: Settings, report: MonitorReport) -> str:
    from mlflow.entities import Metric

    from emily.mlops.tracking import connect

    client = connect(settings)
    run_id = _monitoring_run(client, settings)
    now_ms = int(time.time() * 1000)
    step = int(time.time())  # one step per pass, ordered in time
    metrics = [Metric(k, v, now_ms, step) for k, v in metric_values(report).items()]
    client.log_batch(run_id, metrics=metrics)
    client.log_dict(run_id, report.model_dump(mode="json"), f"passes/{step}.json")
    return run_id


def metrics_file(settings: Settings) -> Path:
    return settings.mlops.monitor_metrics_path or settings.state_dir / "metrics" / "monitor.prom"


def write_gauges(settings: Settings, report: MonitorReport) -> Path:
    """The pass as Prometheus gauges (written atomically, for the textfile collector)."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    gauge = Gauge(
        "emily_monitor",
        "Model monitoring: the last pass's values per check (emily mlops monitor).",
        ["check", "value"],
        registry=registry,
    )
    for key, value in metric_values(report).items():
        _, check, what = key.split(".", 2)
        gauge.labels(check=check, value=what).set(value)
    Gauge(
        "emily_monitor_last_pass_timestamp_seconds",
        "When the last monitoring pass ran.",
        registry=registry,
    ).set(report.at.timestamp())
    path = metrics_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
    return path


def monitor(
    settings: Settings,
    *,
    window: int | None = None,
    reference: int | None = None,
    record: bool = True,
) -> MonitorReport:
    """One pass: the checks, then (``record``) MLflow, the gauges file and the alert events."""
    report = run_checks(settings, window=window, reference=reference)
    for check in report.alerts:
        log.warning(
            "monitor_alert",
            check=check.name,
            statistic=check.statistic,
            p_value=check.p_value,
            threshold=check.threshold,
            n_current=check.n_current,
            detail=check.detail,
        )
    if record:
        report.metrics_file = str(write_gauges(settings, report))
        try:
            report.run_id = log_to_mlflow(settings, report)
        except EmilyError as exc:
            log.warning("monitor_not_logged", error=str(exc))
    return report
