"""Stimulus files (JSON lines) and running them through a thread, resumable after a crash."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from emily.agents.loop import Agent, TurnResult
from emily.agents.perception import Stimulus
from emily.errors import EmilyError


class StimulusFileError(EmilyError):
    """A stimulus file is missing or has a malformed line."""


def parse_stimulus(line: str, row: int) -> Stimulus:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise StimulusFileError(f"not JSON: {exc.msg}", row=row) from exc
    if isinstance(raw, str):
        raw = {"text": raw}
    try:
        return Stimulus.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "stimulus"
        raise StimulusFileError(first["msg"], field=field, row=row) from exc


def load_stimuli(path: Path) -> list[Stimulus]:
    """One stimulus per non-blank line; errors name the line (1-based)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StimulusFileError(f"cannot read {path}: {exc.strerror}", field="stimuli") from exc
    stimuli = [
        parse_stimulus(line, row)
        for row, line in enumerate(text.splitlines(), start=1)
        if line.strip()
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
