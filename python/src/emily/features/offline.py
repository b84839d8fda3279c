"""Offline work on the in-process SDK: materialization, backfill, training sets, baselines.

* ``materialize(since, until)`` writes each view's newest row per entity in that window to Redis
  (``pull_latest_features``). Online writes keep the newest event per entity, so re-running a
  window is harmless.
* ``materialize --incremental`` starts each view where its last materialization ended, minus
  ``materialize_overlap_s``: Feast's own incremental mode filters on event time from the last end,
  so an episode stored late with an older ``occurred_at`` would never be materialized.
* ``backfill(since)`` rebuilds the online store from the offline store: it deletes every view's
  online rows first (a wrong value stamped in the future would otherwise win over every repair),
  then materializes ``[since, now]``.
* ``training_set`` is ``get_historical_features`` with point-in-time joins: for each entity row at
  time t, each view's newest value with ``t - ttl <= event <= t``; nothing stamped after t.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from psycopg import sql

from emily.errors import ConfigError
from emily.features import schema
from emily.memory.connect import connect
from emily.stack.features import features_dsn

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

    from emily.config import Settings


@dataclass
class ViewRun:
    view: str
    start: datetime
    end: datetime
    rows: int
    entities: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class MaterializeResult:
    runs: list[ViewRun] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.runs)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.runs)


def _views(names: Sequence[str] | None) -> list[schema.ViewDef]:
    if not names:
        return list(schema.VIEWS)
    known = {v.name: v for v in schema.VIEWS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"unknown feature view {unknown[0]!r} (known: {', '.join(known)})", field="view"
        )
    return [known[n] for n in names]


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ConfigError("needs a time zone (e.g. 2026-01-01T00:00:00+00:00)", field=name)
    return moment.astimezone(UTC)


def source_counts(
    settings: Settings, view: schema.ViewDef, start: datetime, end: datetime
) -> tuple[int, int]:
    """Source rows and distinct entities of ``view`` with ``start <= occurred_at <= end``."""
    ident = sql.Identifier(settings.features.db_schema)
    query = sql.SQL(
        "SELECT count(*), count(DISTINCT {key}) FROM {schema}.{view} "
        "WHERE occurred_at BETWEEN %s AND %s"
    ).format(
        key=sql.Identifier(view.entity.join_key),
        schema=ident,
        view=sql.Identifier(view.source_view),
    )
    with connect(features_dsn(settings), autocommit=True) as conn:
        row = conn.execute(query, (start, end)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _last_end(store: FeatureStore, name: str) -> datetime | None:
    view = store.get_feature_view(name)
    ends = [end for _, end in view.materialization_intervals]
    return max(ends).astimezone(UTC) if ends else None


def materialize(
    settings: Settings,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    incremental: bool = False,
    views: Sequence[str] | None = None,
    store: FeatureStore | None = None,
) -> MaterializeResult:
    """Materialize the views (all by default) into the online store."""
    from emily.features.store import open_store

    store = store or open_store(settings)
    end = _aware(until, "until") if until is not None else datetime.now(UTC)
    overlap = timedelta(seconds=settings.features.materialize_overlap_s)
    result = MaterializeResult()
    for view in _views(views):
        if since is not None:
            start = _aware(since, "since")
        elif incremental:
            last = _last_end(store, view.name)
            start = (last - overlap) if last is not None else end - view.ttl
        else:
            start = end - view.ttl
        if start >= end:
            raise ConfigError(f"the window ends ({end}) before it starts ({start})", field="since")
        rows, entities = source_counts(settings, view, start, end)
        began = time.perf_counter()
        store.materialize(start, end, [view.name])
        seconds = time.perf_counter() - began
        result.runs.append(ViewRun(view.name, start, end, rows, entities, seconds))
    return result


def delete_online(store: FeatureStore, names: Sequence[str]) -> list[str]:
    """Delete the online rows of the named views (other views of the same entities stay)."""
    online: Any = store._get_provider().online_store
    for name in names:
        online.delete_table(store.config, store.get_feature_view(name))
    return list(names)


def backfill(
    settings: Settings,
    *,
    since: datetime,
    views: Sequence[str] | None = None,
    store: FeatureStore | None = None,
) -> MaterializeResult:
    """Rebuild the online store of the views from the offline store, from ``since`` to now."""
    from emily.features.store import open_store

    store = store or open_store(settings)
    chosen = [v.name for v in _views(views)]
    deleted = delete_online(store, chosen)
    result = materialize(settings, since=since, views=chosen, store=store)
    result.deleted = deleted
    return result


def training_set(
    settings: Settings,
    entity_rows: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    store: FeatureStore | None = None,
) -> pd.DataFrame:
    """Point-in-time correct features for ``entity_rows`` (columns ``thread_id``,
    ``stimulus_kind``, ``event_timestamp`` — timezone-aware — and, for the on-demand view,
    the request columns). Returned timestamps are UTC-aware and integer features ``Int64``."""
    import pandas as pd

    from emily.features.store import open_store

    if "event_timestamp" not in entity_rows.columns:
        raise ConfigError("the entity rows need an event_timestamp column", field="event_timestamp")
    stamps = entity_rows["event_timestamp"]
    if not isinstance(stamps.dtype, pd.DatetimeTZDtype):
        raise ConfigError(
            "event_timestamp must be timezone-aware (naive times are ambiguous)",
            field="event_timestamp",
        )
    store = store or open_store(settings)
    refs = list(features) if features is not None else [r for v in schema.VIEWS for r in v.refs()]
    frame = store.get_historical_features(entity_df=entity_rows, features=refs).to_df()
    # Feast hands back naive UTC timestamps and floats for integers with nulls.
    column = frame["event_timestamp"]
    if not isinstance(column.dtype, pd.DatetimeTZDtype):
        frame["event_timestamp"] = pd.to_datetime(column).dt.tz_localize("UTC")
    dtypes = {f.name: f.dtype for v in schema.VIEWS for f in v.fields}
    for name in frame.columns:
        if dtypes.get(str(name)) == "int64":
            frame[name] = frame[name].astype("Int64")
    return frame


def record_baseline(
    settings: Settings,
    frame: pd.DataFrame,
    *,
    label: str,
    max_values: int = 5000,
    seed: int = 0,
) -> dict[str, int]:
    """Keep ``frame``'s feature columns (a training set) as the drift baseline of their views;
    returns the sample size kept per ``view:feature``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    kept: dict[str, int] = {}
    rows: list[tuple[str, str, str, list[float]]] = []
    for view in schema.VIEWS:
        for item in view.fields:
            if item.name not in frame.columns or item.dtype not in ("float64", "int64"):
                continue
            values = frame[item.name].dropna().to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            if values.size == 0:
                continue
            if values.size > max_values:
                values = rng.choice(values, size=max_values, replace=False)
            rows.append((view.name, item.name, label, [float(x) for x in values]))
            kept[f"{view.name}:{item.name}"] = int(values.size)
    if not rows:
        raise ConfigError("the frame holds no feature values to keep", field="frame")
    statement = sql.SQL(
        "INSERT INTO {}.baselines (view, feature, label, sample) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (view, feature) DO UPDATE SET label = excluded.label, "
        "sample = excluded.sample, captured_at = now()"
    ).format(sql.Identifier(settings.features.db_schema))
    with connect(features_dsn(settings)) as conn, conn.transaction():
        conn.cursor().executemany(statement, rows)
    return kept


def source_rows(
    settings: Settings,
    view: schema.ViewDef,
    *,
    since: datetime,
    until: datetime | None = None,
    limit: int,
) -> list[dict[str, Any]]:
    """The newest ``limit`` source rows of ``view`` since ``since``: entity key, timestamp and
    features."""
    columns = [view.entity.join_key, "occurred_at", *view.feature_names]
    query = sql.SQL(
        "SELECT {cols} FROM {schema}.{view} WHERE occurred_at >= %s AND occurred_at <= %s "
        "ORDER BY occurred_at DESC LIMIT %s"
    ).format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        schema=sql.Identifier(settings.features.db_schema),
        view=sql.Identifier(view.source_view),
    )
    with connect(features_dsn(settings), autocommit=True) as conn:
        end = until if until is not None else datetime.now(UTC) + timedelta(days=3650)
        cursor = conn.execute(query, (since, end, limit))
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
