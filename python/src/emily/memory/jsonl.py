"""Reading ``emily memory ingest`` files: one JSON episode per line, read with the one JSONL
reader (``emily.jsonio``: BOM accepted, depth bounded) and validated with its line number, so
an error names the line (1-based)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from emily.jsonio import read_json_lines
from emily.memory.errors import InvalidEpisodeError
from emily.memory.models import Episode, EpisodeLimits, validate_episode


def read_episodes(path: Path, limits: EpisodeLimits) -> Iterator[tuple[int, Episode]]:
    """Yield (line number, validated episode); blank lines are skipped."""
    for lineno, value in read_json_lines(path, InvalidEpisodeError):
        if not isinstance(value, dict):
            raise InvalidEpisodeError("a line must be a JSON object", field="line", row=lineno)
        yield lineno, validate_episode(value, row=lineno, limits=limits)
