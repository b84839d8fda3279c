"""The demo's scripted day forces one degraded turn with a tight cognition budget: passed with
that turn only, through its run context, never by changing the shared settings."""

from __future__ import annotations

from datetime import time

from rich.console import Console

from emily.config import Settings
from emily.demo.day import DayEvent
from emily.demo.report import LoopRecord
from emily.demo.runner import run_day
from tests.agents.conftest import variant
from tests.fixtures.llm import LlmServer


async def test_a_tight_deadline_applies_to_its_turn_only(
    agents_settings: Settings, llm_server: LlmServer
) -> None:
    # A configured budget the small model cannot meet either, so both turns are quick and each
    # one's reason states the budget it had.
    settings = variant(agents_settings, agents={"cognition_deadline_s": 0.5})
    configured = settings.agents.model_dump()
    events = [
        DayEvent(time(9, 0), "A friend invites me to lunch.", tight_deadline=True),
        DayEvent(time(9, 5), "The friend says hello again."),
    ]
    seen: list[float] = []

    def during(record: LoopRecord) -> None:
        # Between turns the settings the agent reads are the configured ones.
        seen.append(settings.agents.cognition_deadline_s)

    records = await run_day(settings, events, Console(quiet=True), on_turn=during)
    tight, normal = records
    assert tight.tight_deadline and tight.degraded
    assert tight.reason is not None and tight.reason.startswith("cognition: ")
    assert "0.05" in tight.reason
    # The next turn had the configured budget again.
    assert normal.reason is not None and normal.reason.startswith("cognition: ")
    assert "0.5" in normal.reason and "0.05" not in normal.reason
    assert seen == [0.5, 0.5]
    assert settings.agents.model_dump() == configured
