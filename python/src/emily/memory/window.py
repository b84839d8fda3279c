"""The accepted ``occurred_at`` window: episodes (and the monthly partitions that hold them)
exist only from ``occurred_at_past_days`` before now to ``occurred_at_future_days`` after it.

Without it any timestamp from year 1 to 9999 was accepted and created a partition of its own,
so one hostile file (or API client) could create thousands of partitions and slow every search.
Used by the memory store, by ingest validation and by the agents API (a stimulus's ``at``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from emily.memory.settings import DatabaseSettings


@dataclass(frozen=True)
class Window:
    earliest: datetime
    latest: datetime

    def problem(self, moment: datetime) -> str | None:
        """Why ``moment`` is outside the window (or not comparable), else ``None``."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            return "needs a UTC offset, e.g. 2026-05-01T12:00:00+00:00"
        try:
            utc = moment.astimezone(UTC)
        except (OverflowError, ValueError):
            return "is outside the representable calendar once converted to UTC"
        if utc < self.earliest:
            return f"is before the accepted window (earliest {self.earliest:%Y-%m-%dT%H:%MZ})"
        if utc > self.latest:
            return f"is after the accepted window (latest {self.latest:%Y-%m-%dT%H:%MZ})"
        return None


def accepted_window(settings: DatabaseSettings, now: datetime | None = None) -> Window:
    now = now or datetime.now(UTC)
    return Window(
        earliest=now - timedelta(days=settings.occurred_at_past_days),
        latest=now + timedelta(days=settings.occurred_at_future_days),
    )
