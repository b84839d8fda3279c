from __future__ import annotations

from datetime import UTC, datetime, timedelta

from emily.agents.perception import Stimulus
from emily.demo.day import DAY, day_events, demo_day, stimulus_payload


def test_day_runs_from_morning_to_night_with_repeats_and_forced_degrades() -> None:
    assert 30 <= len(DAY) <= 48
    clocks = [e.clock for e in DAY]
    assert clocks == sorted(clocks)
    texts = [e.text for e in DAY]
    assert any(texts.count(t) >= 3 for t in texts)  # habituation needs repeats
    assert sum(e.tight_deadline for e in DAY) >= 1


def test_short_day_keeps_span_and_a_forced_degrade() -> None:
    events = day_events(6)
    assert len(events) == 6
    assert events[0] == DAY[0] and events[-1] == DAY[-1]
    assert any(e.tight_deadline for e in events)
    assert day_events(None) == list(DAY)
    assert day_events(0) == []


def test_payloads_are_valid_stimuli() -> None:
    day = demo_day(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    assert day.date() == (datetime(2026, 3, 2, tzinfo=UTC) - timedelta(days=1)).date()
    for event in DAY:
        stimulus = Stimulus.model_validate(stimulus_payload(event, day))
        assert stimulus.at is not None and stimulus.at.date() == day.date()
        assert event.label.startswith(f"{event.clock:%H:%M}")
