"""The scripted day of ``emily demo``: stimuli from waking to sleep with varied valence and
arousal, a few repeats (the affect layer habituates to them) and a few turns under a deadline too
tight for the LLM (cognition times out and the workspace decides from instinct and affect)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any


@dataclass(frozen=True)
class DayEvent:
    clock: time
    text: str
    cues: dict[str, float] = field(default_factory=dict)
    # A deadline far below the LLM's latency forces a degraded decision on purpose.
    tight_deadline: bool = False

    @property
    def label(self) -> str:
        return f"{self.clock:%H:%M} {self.text}"


def _t(clock: str) -> time:
    hours, minutes = clock.split(":")
    return time(int(hours), int(minutes))


_ALARM = "The alarm rings loudly next to the bed."
_NEIGHBOUR = "The neighbour's dog barks at the fence again."

DAY: tuple[DayEvent, ...] = (
    DayEvent(_t("06:30"), _ALARM, {"arousal": 0.6}),
    DayEvent(_t("06:35"), "Sunshine is warm on the window; the house is quiet.", {"reward": 0.5}),
    DayEvent(_t("06:50"), "A delicious breakfast with fresh bread and coffee.", {"reward": 0.7}),
    DayEvent(_t("07:10"), _NEIGHBOUR, {"threat": 0.3, "arousal": 0.5}),
    DayEvent(_t("07:12"), _NEIGHBOUR, {"threat": 0.3, "arousal": 0.5}),
    DayEvent(_t("07:15"), _NEIGHBOUR, {"threat": 0.3, "arousal": 0.5}),
    DayEvent(_t("07:40"), "A message from my sister: she wants to visit this weekend."),
    DayEvent(_t("08:05"), "The bus is late and the platform is crowded and cold."),
    DayEvent(_t("08:30"), "A colleague thanks me for the help with the report.", {"social": 0.7}),
    DayEvent(
        _t("09:00"),
        "The server is down and customers are calling; urgent warning.",
        {"threat": 0.7},
    ),
    DayEvent(
        _t("09:05"),
        "Smoke alarm in the office kitchen; people are shouting.",
        {"threat": 0.9},
        tight_deadline=True,
    ),
    DayEvent(
        _t("09:20"),
        "False alarm: burnt toast. Everyone laughs together.",
        {"social": 0.6, "reward": 0.4},
    ),
    DayEvent(
        _t("10:00"), "A strange new idea for the project, unusual but promising.", {"novelty": 0.8}
    ),
    DayEvent(_t("10:45"), "Long meeting; the slides are boring and I am tired."),
    DayEvent(_t("11:30"), "The manager praises the team and announces a bonus.", {"reward": 0.9}),
    DayEvent(
        _t("12:15"), "Lunch with friends in the park; lovely food.", {"social": 0.8, "reward": 0.6}
    ),
    DayEvent(_t("13:00"), "An email says the proposal was rejected.", {"valence": -0.6}),
    DayEvent(
        _t("13:05"), "Another email: the rejection was a mistake, it was accepted.", {"reward": 0.8}
    ),
    DayEvent(
        _t("14:00"),
        "A loud crash in the street; someone might be hurt.",
        {"threat": 0.8},
        tight_deadline=True,
    ),
    DayEvent(_t("14:10"), "The cyclist stands up, unhurt, and waves.", {"valence": 0.4}),
    DayEvent(_t("15:00"), "Quiet focused work on a curious puzzle.", {"novelty": 0.5}),
    DayEvent(_t("15:30"), _NEIGHBOUR, {"threat": 0.3, "arousal": 0.5}),
    DayEvent(_t("16:20"), "My phone battery dies; the map is lost and I am late."),
    DayEvent(_t("17:00"), "A stranger asks for directions and thanks me warmly.", {"social": 0.6}),
    DayEvent(_t("17:45"), "Storm warning: heavy rain and wind tonight.", {"threat": 0.5}),
    DayEvent(
        _t("18:30"),
        "Cooking dinner with my partner; music and laughter.",
        {"social": 0.8, "reward": 0.6},
    ),
    DayEvent(_t("19:15"), "News of a friend's illness; sad and worried.", {"valence": -0.7}),
    DayEvent(
        _t("19:40"),
        "A long call with the friend; they sound hopeful.",
        {"social": 0.8, "valence": 0.3},
    ),
    DayEvent(_t("20:30"), "Thunder outside; the lights flicker.", {"threat": 0.5}),
    DayEvent(_t("20:35"), "Thunder outside; the lights flicker.", {"threat": 0.5}),
    DayEvent(_t("20:40"), "Thunder outside; the lights flicker.", {"threat": 0.5}),
    DayEvent(_t("21:15"), "A warm bath and a good book.", {"reward": 0.6, "arousal": -0.6}),
    DayEvent(
        _t("22:00"), "An unknown noise downstairs in the dark.", {"threat": 0.6, "novelty": 0.6}
    ),
    DayEvent(_t("22:05"), "It was the cat. Calm again.", {"valence": 0.3, "arousal": -0.5}),
    DayEvent(
        _t("22:45"), "Lights out; the house is quiet and I rest.", {"arousal": -0.8, "valence": 0.3}
    ),
    DayEvent(
        _t("23:30"), "A strange dream about the office on fire.", {"threat": 0.4, "novelty": 0.5}
    ),
)


def day_events(count: int | None = None) -> list[DayEvent]:
    """The first ``count`` events spread over the whole day (every event when ``None``), so a
    short demo still runs from morning to night and keeps a forced-degraded turn."""
    events = list(DAY)
    if count is None or count >= len(events):
        return events
    if count < 1:
        return []
    step = (len(events) - 1) / max(count - 1, 1)
    picked = sorted({round(i * step) for i in range(count)})
    if not any(events[i].tight_deadline for i in picked):
        forced = next(i for i, e in enumerate(events) if e.tight_deadline)
        picked[len(picked) // 2] = forced
        picked = sorted(set(picked))
    return [events[i] for i in picked]


def stimulus_payload(event: DayEvent, day: datetime) -> dict[str, Any]:
    """The stimulus object the agent loop takes (``emily.agents.perception.Stimulus`` fields)."""
    at = datetime.combine(day.astimezone(UTC).date(), event.clock, tzinfo=UTC)
    payload: dict[str, Any] = {"text": event.text, "at": at.isoformat(), "source": "demo"}
    payload.update(event.cues)
    return payload


def demo_day(now: datetime | None = None) -> datetime:
    """Yesterday (UTC), so the whole scripted day lies in the past."""
    return (now or datetime.now(UTC)) - timedelta(days=1)
