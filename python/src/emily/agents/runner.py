"""Stimulus files (JSON lines) and running them through a thread, resumable after a crash."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from emily.agents.loop import Agent, TurnResult
from emily.agents.perception import Stimulus
from emily.errors import EmilyError
from emily.jsonio import read_json_lines
from emily.memory.window import Window


class StimulusFileError(EmilyError):
    """A stimulus file is missing or has a malformed line."""


def parse_stimulus(raw: Any, row: int, window: Window | None = None) -> Stimulus:
    """One parsed JSON line as a stimulus (a bare string is shorthand for ``{"text": ...}``);
    ``at`` must lie inside ``window`` when one is given (the episode could not be stored)."""
    if isinstance(raw, str):
        raw = {"text": raw}
    try:
        stimulus = Stimulus.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "stimulus"
        raise StimulusFileError(first["msg"], field=field, row=row) from exc
    if window is not None and stimulus.at is not None:
        problem = window.problem(stimulus.at)
        if problem is not None:
            raise StimulusFileError(problem, field="at", row=row)
    return stimulus


def load_stimuli(path: Path, window: Window | None = None) -> list[Stimulus]:
    """One stimulus per non-blank line; every error names the line (1-based)."""
    stimuli = [
        parse_stimulus(raw, row, window)
        for row, raw in read_json_lines(path, StimulusFileError, field="stimulus")
    ]
    if not stimuli:
        raise StimulusFileError(f"{path} holds no stimuli", field="stimuli")
    return stimuli


async def run_stimuli(
    agent: Agent,
    thread_id: str,
    stimuli: Sequence[Stimulus],
    *,
    resume: bool = False,
    on_result: Callable[[TurnResult], None] | None = None,
) -> list[TurnResult]:
    """Run the stimuli in order. With ``resume`` an interrupted turn is finished from its last
    checkpoint and the stimuli the thread has already completed are skipped."""
    results: list[TurnResult] = []
    start = 0
    if resume:
        finished = await agent.resume(thread_id)
        if finished is not None:
            results.append(finished)
            if on_result is not None:
                on_result(finished)
        view = await agent.thread(thread_id)
        start = view.turn if view is not None else 0
    for stimulus in stimuli[start:]:
        result = await agent.step(thread_id, stimulus)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
