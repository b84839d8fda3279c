"""Pushes from outside the agent loop (replays, repairs, other producers): validated like the
agent's, and every row must name an episode the offline store has — an entity and event time no
episode has would put a value online that no training set or backfill can ever reproduce.

The agent's own pushes skip the lookup: consolidate pushes only the episode it has just
committed. The offline store is the episodes table, so a push never writes offline; "nothing is
written to either store" for a refused batch means no online write at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emily.features.schema import STIMULUS_KIND, THREAD
from emily.features.validation import FeaturePushError, _source, validate_push
from emily.jsonio import read_json_lines
from emily.memory.connect import connect
from emily.stack.features import features_dsn

if TYPE_CHECKING:
    from emily.config import Settings
    from emily.features.client import FeatureClient

# Where each entity key lives in an episode.
_CONTEXT_KEY = {THREAD.join_key: "thread_id", STIMULUS_KIND.join_key: "source"}


def unknown_entities(
    settings: Settings, push_source: str, rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    """1-based rows whose (entity, event time) no stored episode has."""
    source = _source(push_source)
    key = source.entity.join_key
    values = [str(r[key]) for r in rows]
    moments = [r[source.timestamp] for r in rows]
    query = (
        "SELECT r.n FROM unnest(%s::text[], %s::timestamptz[]) WITH ORDINALITY AS r(k, ts, n) "
        "WHERE NOT EXISTS (SELECT 1 FROM public.episodic_memories e "
        "WHERE e.occurred_at = r.ts AND e.context->>%s = r.k) ORDER BY r.n"
    )
    with connect(features_dsn(settings), autocommit=True) as conn:
        found = conn.execute(query, (values, moments, _CONTEXT_KEY[key])).fetchall()
    return [int(r[0]) for r in found]


async def push_checked(
    settings: Settings,
    client: FeatureClient,
    push_source: str,
    rows: Sequence[Mapping[str, Any]],
) -> int:
    """Validate, check every row against the offline store, then push; returns rows pushed."""
    config = settings.features
    checked = validate_push(
        push_source, rows, max_rows=config.push_max_rows, max_future_s=config.push_max_future_s
    )
    missing = unknown_entities(settings, push_source, checked)
    if missing:
        source = _source(push_source)
        first = missing[0]
        raise FeaturePushError(
            f"unknown entity {checked[first - 1][source.entity.join_key]!r} at "
            f"{checked[first - 1][source.timestamp].isoformat()}: no stored episode has it",
            field=source.entity.join_key,
            row=first,
            hint=f"{len(missing)} row(s) name no episode; push only stored episodes",
        )
    return await client.push(push_source, checked)


def read_push_file(path: Path, max_rows: int) -> list[dict[str, Any]]:
    """The rows of a JSON-lines push file (``emily.jsonio``'s reader: a line that is not JSON is
    refused naming its line number), every line an object, at most ``max_rows``."""
    rows: list[dict[str, Any]] = []
    for number, row in read_json_lines(path, FeaturePushError):
        if len(rows) >= max_rows:
            raise FeaturePushError(
                f"more than {max_rows} rows in {path.name}",
                field="rows",
                row=number,
                hint="split the file (features.push_max_rows bounds one atomic batch)",
            )
        if not isinstance(row, dict):
            raise FeaturePushError(
                f"expected a JSON object, got {type(row).__name__}", field="line", row=number
            )
        rows.append(row)
    if not rows:
        raise FeaturePushError(f"{path.name} has no rows", field="file")
    return rows


async def push_file(settings: Settings, push_source: str, path: Path) -> int:
    """``emily features push``: a file's rows, checked whole (schema, then stored episodes), then
    pushed as one batch; nothing is written when any row is refused."""
    from emily.features.client import FeatureClient

    rows = read_push_file(path, settings.features.push_max_rows)
    async with FeatureClient.from_settings(settings) as client:
        return await push_checked(settings, client, push_source, rows)
