"""Feature monitoring per view: freshness, missing values, drift against the training baseline.

For each view, from the offline store (its source view) and the online store (Redis, read
directly, without Feast):

* freshness: the age of the newest offline and online event, and how far online lags behind
  offline, against the view's TTL; ``stale`` when the newest online value is older than the TTL,
  ``online_behind`` when the offline store has rows the online store lacks by more than the TTL
  (a materialization is overdue or pushes fail);
* missing values: the share of nulls per feature over the recent rows (``monitor_window_s``), and
  the share of entities active within the TTL that have no fresh online row;
* drift: each numeric feature's recent values against the baseline kept with the last training
  set (``emily.features.offline.record_baseline``), two-sample KS tests with Holm's correction
  across the view's features (``emily.drift``, the detectors of the model-lifecycle work), PSI
  alongside. No baseline: drift is not tested, and the report says so.

Nothing here imports Feast, so the agents service exports the same numbers as Prometheus gauges.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from psycopg import sql
from pydantic import BaseModel, Field

from emily.features import online, schema
from emily.features.offline import source_rows
from emily.memory.connect import connect
from emily.stack.features import features_dsn

if TYPE_CHECKING:
    from emily.config import Settings

MIN_DRIFT_ROWS = 5


class FeatureDrift(BaseModel):
    feature: str
    statistic: float
    p_value: float
    adjusted_p_value: float | None
    psi: float | None
    drift: bool
    n_baseline: int
    n_current: int


class ViewHealth(BaseModel):
    view: str
    entity: str
    ttl_s: float
    rows: int = Field(description="Recent offline rows examined.")
    newest_offline: datetime | None
    newest_online: datetime | None
    offline_age_s: float | None
    online_age_s: float | None
    lag_s: float | None = Field(description="Newest offline minus newest online event.")
    online_entities: int
    missing_rate: dict[str, float]
    online_missing_rate: float | None = Field(
        description="Entities active within the TTL without a fresh online row."
    )
    baseline: str | None = Field(description="Label of the training baseline, if any.")
    drift: list[FeatureDrift]
    flags: list[str]

    @property
    def ok(self) -> bool:
        return not self.flags


class MonitorReport(BaseModel):
    at: datetime
    project: str
    window_s: int
    views: list[ViewHealth]

    @property
    def flagged(self) -> list[str]:
        return [v.view for v in self.views if v.flags]


def _age(now: datetime, moment: datetime | None) -> float | None:
    return None if moment is None else round((now - moment).total_seconds(), 3)


def load_baselines(settings: Settings) -> dict[tuple[str, str], tuple[str, list[float]]]:
    """``(view, feature) → (label, sample)`` of the kept baselines."""
    query = sql.SQL("SELECT view, feature, label, sample FROM {}.baselines").format(
        sql.Identifier(settings.features.db_schema)
    )
    with connect(features_dsn(settings), autocommit=True) as conn:
        return {(r[0], r[1]): (str(r[2]), list(r[3])) for r in conn.execute(query).fetchall()}


def _newest_offline(settings: Settings, view: schema.ViewDef, now: datetime) -> datetime | None:
    query = sql.SQL(
        "SELECT max(occurred_at) FROM {}.episodes_v1 WHERE {} IS NOT NULL AND occurred_at <= %s"
    ).format(sql.Identifier(settings.features.db_schema), sql.Identifier(view.entity.join_key))
    with connect(features_dsn(settings), autocommit=True) as conn:
        row = conn.execute(query, (now,)).fetchone()
    return None if row is None or row[0] is None else row[0].astimezone(UTC)


def _drift(
    settings: Settings,
    view: schema.ViewDef,
    rows: list[dict[str, Any]],
    baselines: dict[tuple[str, str], tuple[str, list[float]]],
) -> tuple[str | None, list[FeatureDrift]]:
    from emily.drift.numeric import ks_test, population_stability_index
    from emily.drift.report import combine

    label: str | None = None
    results = []
    psi: dict[str, float | None] = {}
    for item in view.fields:
        kept = baselines.get((view.name, item.name))
        if kept is None:
            continue
        label = kept[0]
        current = [
            float(r[item.name])
            for r in rows
            if r[item.name] is not None and math.isfinite(float(r[item.name]))
        ]
        if len(current) < MIN_DRIFT_ROWS or len(kept[1]) < MIN_DRIFT_ROWS:
            continue
        results.append(
            ks_test(kept[1], current, alpha=settings.features.drift_alpha, feature=item.name)
        )
        psi[item.name] = population_stability_index(kept[1], current)
    if not results:
        return label, []
    report = combine(results, alpha=settings.features.drift_alpha, correction="holm")
    return label, [
        FeatureDrift(
            feature=r.feature,
            statistic=r.statistic,
            p_value=r.p_value if r.p_value is not None else 1.0,
            adjusted_p_value=r.adjusted_p_value,
            psi=psi.get(r.feature),
            drift=r.drift,
            n_baseline=r.n_reference,
            n_current=r.n_current,
        )
        for r in report.results
    ]


def check_view(
    settings: Settings,
    view: schema.ViewDef,
    *,
    now: datetime,
    redis_conn: Any,
    baselines: dict[tuple[str, str], tuple[str, list[float]]],
) -> ViewHealth:
    config = settings.features
    ttl = view.ttl.total_seconds()
    window_start = now - timedelta(seconds=config.monitor_window_s)
    rows = source_rows(settings, view, since=window_start, until=now, limit=config.monitor_max_rows)
    newest_offline = _newest_offline(settings, view, now)
    join_key = view.entity.join_key
    newest_online, online_entities = online.newest(
        redis_conn, config.project, join_key, view.name, max_keys=config.monitor_max_rows
    )
    missing = {
        item.name: (
            round(sum(1 for r in rows if r[item.name] is None) / len(rows), 6) if rows else 0.0
        )
        for item in view.fields
    }
    active = sorted(
        {
            str(r[join_key])
            for r in rows
            if r["occurred_at"] is not None and (now - r["occurred_at"]).total_seconds() <= ttl
        }
    )
    online_missing: float | None = None
    if active:
        stamps = online.event_times(redis_conn, config.project, join_key, active, view.name)
        lacking = sum(1 for s in stamps.values() if s is None or (now - s).total_seconds() > ttl)
        online_missing = round(lacking / len(active), 6)
    label, drift = _drift(settings, view, rows, baselines)
    online_age = _age(now, newest_online)
    lag = None
    if newest_offline is not None:
        lag = (
            round((newest_offline - newest_online).total_seconds(), 3)
            if newest_online is not None
            else None
        )
    flags: list[str] = []
    if online_age is None or online_age > ttl:
        flags.append("stale")
    if newest_offline is not None and (lag is None or lag > ttl):
        flags.append("online_behind")
    bad = [name for name, rate in missing.items() if rate > config.max_missing_rate]
    bad = [n for n in bad if not next(f for f in view.fields if f.name == n).nullable]
    if bad:
        flags.append("missing:" + ",".join(bad))
    if online_missing is not None and online_missing > config.max_missing_rate:
        flags.append("online_missing")
    drifting = [d.feature for d in drift if d.drift]
    if drifting:
        flags.append("drifting:" + ",".join(drifting))
    return ViewHealth(
        view=view.name,
        entity=view.entity.name,
        ttl_s=ttl,
        rows=len(rows),
        newest_offline=newest_offline,
        newest_online=newest_online,
        offline_age_s=_age(now, newest_offline),
        online_age_s=online_age,
        lag_s=lag,
        online_entities=online_entities,
        missing_rate=missing,
        online_missing_rate=online_missing,
        baseline=label,
        drift=drift,
        flags=flags,
    )


def monitor(settings: Settings, *, now: datetime | None = None) -> MonitorReport:
    """The health of every view now."""
    moment = now or datetime.now(UTC)
    baselines = load_baselines(settings)
    conn = online.client(settings)
    try:
        views = [
            check_view(settings, view, now=moment, redis_conn=conn, baselines=baselines)
            for view in schema.VIEWS
        ]
    finally:
        conn.close()
    return MonitorReport(
        at=moment,
        project=settings.features.project,
        window_s=settings.features.monitor_window_s,
        views=views,
    )
