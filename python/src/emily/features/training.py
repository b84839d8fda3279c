"""Training sets from the episodes: entity rows are stored episodes (thread, stimulus kind, time),
features joined point-in-time (``emily.features.offline.training_set``). The set's feature
distributions become the drift baseline the monitor compares recent values with."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from psycopg import sql

from emily.errors import ConfigError
from emily.features.offline import record_baseline, training_set
from emily.memory.connect import connect
from emily.stack.features import features_dsn

if TYPE_CHECKING:
    import pandas as pd

    from emily.config import Settings


def episode_rows(
    settings: Settings, *, since: datetime, until: datetime, limit: int = 20_000
) -> pd.DataFrame:
    """The stored episodes in ``[since, until]`` as entity rows (newest first, at most
    ``limit``)."""
    import pandas as pd

    query = sql.SQL(
        "SELECT thread_id, stimulus_kind, occurred_at FROM {}.episodes_v1 "
        "WHERE occurred_at BETWEEN %s AND %s AND thread_id IS NOT NULL "
        "AND stimulus_kind IS NOT NULL ORDER BY occurred_at DESC LIMIT %s"
    ).format(sql.Identifier(settings.features.db_schema))
    with connect(features_dsn(settings), autocommit=True) as conn:
        rows = conn.execute(query, (since, until, limit)).fetchall()
    frame = pd.DataFrame(rows, columns=["thread_id", "stimulus_kind", "event_timestamp"])
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    return frame


def baseline_from_episodes(
    settings: Settings, *, since: datetime, until: datetime, label: str
) -> dict[str, int]:
    """Build the training set of the window's episodes and keep it as the baseline."""
    rows = episode_rows(settings, since=since, until=until)
    if rows.empty:
        raise ConfigError(
            f"no episodes between {since:%Y-%m-%d %H:%M} and {until:%Y-%m-%d %H:%M}",
            field="--since",
            hint="widen the window",
        )
    frame = training_set(settings, rows)
    return record_baseline(settings, frame, label=label)
