"""Reading ``emily memory ingest`` files: one JSON episode per line, validated with its line
number so an error names the line (1-based)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emily.config import Settings
from emily.memory.errors import InvalidEpisodeError
from emily.memory.models import Episode, validate_episode


def _parse(line: str, lineno: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidEpisodeError(f"malformed JSON: {exc.msg}", field="line", row=lineno) from exc
    if not isinstance(value, dict):
        raise InvalidEpisodeError("a line must be a JSON object", field="line", row=lineno)
    return value


def read_episodes(path: Path, settings: Settings) -> Iterator[tuple[int, Episode]]:
    """Yield (line number, validated episode); blank lines are skipped."""
    db = settings.database
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise InvalidEpisodeError(f"cannot read {path}: {exc.strerror}", field="file") from exc
    with handle:
        try:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                episode = validate_episode(
                    _parse(line, lineno),
                    row=lineno,
                    dim=db.embedding_dim,
                    max_chars=db.max_content_chars,
                )
                yield lineno, episode
        except UnicodeDecodeError as exc:
            raise InvalidEpisodeError(f"{path} is not UTF-8 text", field="file") from exc
