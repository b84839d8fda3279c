"""The VADER lexicon as training data: 7,520 entries (words, slang, emoticons), each with the
mean valence and the 10 individual ratings given by human raters on [-4, 4] (Hutto & Gilbert
2014, MIT licence), read from the installed ``vadersentiment`` wheel.

Parsing is strict: a malformed line is an ``LexiconError`` naming the line and the column. The
target is ``valence = mean(ratings) / 4`` in [-1, 1], recomputed from the ratings (the published
mean is kept for the consistency check in ``validation``). ``kind`` separates dictionary words
from everything else (emoticons, symbols, mixed tokens), the axis along which a model trained on
prose fails (and the axis of the closed-loop issue's drift).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.resources
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from emily.errors import EmilyError

RATINGS_PER_ROW = 10
RATING_MIN, RATING_MAX = -4, 4
# A word: lower-case letters, optionally joined by apostrophes or hyphens ("don't", "well-known").
WORD = re.compile(r"[a-z]+(?:['-][a-z]+)*")
Kind = Literal["word", "other"]
COLUMNS = ("token", "published_mean", "published_std", "ratings")


class LexiconError(EmilyError):
    """The lexicon file is missing or a line is malformed."""


@dataclass(frozen=True)
class LexiconRow:
    line: int
    token: str
    published_mean: float
    published_std: float
    ratings: tuple[int, ...]

    @property
    def kind(self) -> Kind:
        return kind_of(self.token)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.ratings)

    @property
    def valence(self) -> float:
        """The human rating mapped to [-1, 1]."""
        return self.mean / RATING_MAX


def kind_of(token: str) -> Kind:
    return "word" if WORD.fullmatch(token) else "other"


def installed_lexicon() -> Path:
    """``vader_lexicon.txt`` inside the installed vadersentiment wheel."""
    try:
        path = Path(str(importlib.resources.files("vaderSentiment") / "vader_lexicon.txt"))
    except ModuleNotFoundError as exc:
        raise LexiconError(
            "the vadersentiment wheel is not installed", hint="run `make setup` (uv sync)"
        ) from exc
    if not path.is_file():
        raise LexiconError(f"{path} is missing from the vadersentiment wheel")
    return path


def _ratings(text: str, line: int) -> tuple[int, ...]:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise LexiconError("not a list of numbers", field="ratings", row=line) from exc
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise LexiconError("must be a list of integers", field="ratings", row=line)
    return tuple(value)


def parse_line(text: str, line: int) -> LexiconRow:
    """One ``token<TAB>mean<TAB>std<TAB>[r1, ..., r10]`` line (types only; ranges are the
    validation stage's job, so it can report every problem with its row and column)."""
    parts = text.rstrip("\n").split("\t")
    if len(parts) != len(COLUMNS):
        raise LexiconError(
            f"expected {len(COLUMNS)} tab-separated columns, got {len(parts)}",
            field="line",
            row=line,
        )
    token, mean, std, ratings = parts
    numbers: list[float] = []
    for name, raw in (("published_mean", mean), ("published_std", std)):
        try:
            numbers.append(float(raw))
        except ValueError as exc:
            raise LexiconError(f"not a number: {raw!r}", field=name, row=line) from exc
    return LexiconRow(line, token, numbers[0], numbers[1], _ratings(ratings, line))


def read_lexicon(path: Path) -> list[LexiconRow]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LexiconError(f"cannot read {path}: {exc}", field="file") from exc
    return [parse_line(raw, n) for n, raw in enumerate(text.splitlines(), start=1) if raw]


def content_hash(rows: list[LexiconRow]) -> str:
    """SHA-256 of the normalised content (independent of file layout and line order)."""
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda r: r.token):
        digest.update(
            f"{row.token}\t{row.published_mean}\t{row.published_std}\t{row.ratings}\n".encode()
        )
    return digest.hexdigest()
