"""Stimuli as they arrive, and what perception makes of them before any memory or model is used.

A stimulus is one JSON object (one line of a ``.jsonl`` file, or one API request body). Cues that
the sender knows (``threat``, ``valence`` ...) are taken as given; the others are estimated from a
small word list, which is crude but instant and needs nothing that can fail, unless an
*appraiser* (a model, passed in the turn's context) estimates some of them: its values replace
the word-list estimates, the sender's still win over both.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, NamedTuple, Protocol, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from emily.agents.state import StimulusData
from emily.jsonio import text_problem

# Cues in [0, 1] and the stimulus's own affective tone in [-1, 1]: the keys of ``features``.
UNIT_CUES = ("threat", "social", "novelty", "reward")
VAD = ("valence", "arousal", "dominance")
CUES = (*UNIT_CUES, *VAD)

LEXICON: dict[str, frozenset[str]] = {
    "threat": frozenset(
        [
            "danger",
            "dangerous",
            "threat",
            "threatening",
            "attack",
            "alarm",
            "fire",
            "smoke",
            "crash",
            "scream",
            "angry",
            "hurt",
            "pain",
            "injured",
            "broken",
            "shout",
            "shouting",
            "intruder",
            "storm",
            "warning",
            "emergency",
            "fear",
            "afraid",
            "attacked",
            "bleeding",
            "stolen",
            "lost",
            "urgent",
        ]
    ),
    "social": frozenset(
        [
            "friend",
            "friends",
            "hello",
            "hi",
            "talk",
            "talked",
            "family",
            "hug",
            "meet",
            "meeting",
            "together",
            "call",
            "called",
            "message",
            "visit",
            "visited",
            "chat",
            "party",
            "invite",
            "invited",
            "mother",
            "father",
            "sister",
            "brother",
            "colleague",
            "neighbour",
            "neighbor",
            "partner",
            "child",
            "kids",
            "someone",
            "asked",
            "thanks",
        ]
    ),
    "novelty": frozenset(
        [
            "new",
            "strange",
            "unknown",
            "discover",
            "discovered",
            "surprise",
            "surprising",
            "unexpected",
            "first",
            "odd",
            "unusual",
            "curious",
            "mysterious",
            "novel",
            "never",
            "wonder",
            "idea",
            "puzzle",
        ]
    ),
    "reward": frozenset(
        [
            "gift",
            "success",
            "succeeded",
            "food",
            "meal",
            "praise",
            "praised",
            "win",
            "won",
            "thanks",
            "good",
            "great",
            "love",
            "lovely",
            "delicious",
            "reward",
            "bonus",
            "promotion",
            "sunshine",
            "warm",
            "rest",
        ]
    ),
    "negative": frozenset(
        [
            "sad",
            "bad",
            "awful",
            "terrible",
            "lonely",
            "alone",
            "cry",
            "crying",
            "failed",
            "failure",
            "loss",
            "lost",
            "tired",
            "exhausted",
            "sick",
            "boring",
            "bored",
            "grief",
            "rejected",
            "ignored",
        ]
    ),
}

_WORD = re.compile(r"[a-z']+")


class Stimulus(BaseModel):
    """One stimulus. Only ``text`` is required; cue values override the word-list estimates.

    Everything that would fail later (PostgreSQL refuses NUL and lone surrogates, JSON has no
    NaN, an offset at the calendar's edge overflows once converted to UTC) is refused here, so
    a bad stimulus is a validation error naming its field, never a failed turn."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    text: str = Field(min_length=1, max_length=4000, description="What happened.")
    at: AwareDatetime | None = Field(default=None, description="When (default: now).")
    source: str = Field(default="user", max_length=64, description="Where it came from.")
    threat: float | None = Field(default=None, ge=0.0, le=1.0)
    social: float | None = Field(default=None, ge=0.0, le=1.0)
    novelty: float | None = Field(default=None, ge=0.0, le=1.0)
    reward: float | None = Field(default=None, ge=0.0, le=1.0)
    valence: float | None = Field(default=None, ge=-1.0, le=1.0)
    arousal: float | None = Field(default=None, ge=-1.0, le=1.0)
    dominance: float | None = Field(default=None, ge=-1.0, le=1.0)
    ratings: list[Annotated[int, Field(ge=-4, le=4)]] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Human valence ratings of the text (-4..4 each, VADER's scale), when it has "
        "been rated. Never used by the turn: they are the label the appraisal is scored "
        "against (monitoring, A/B outcomes) and training data for drift-triggered retraining.",
    )

    @field_validator("text", "source")
    @classmethod
    def _storable(cls, value: str) -> str:
        reason = text_problem(value)
        if reason:
            raise ValueError(reason)
        return value

    @field_validator("at")
    @classmethod
    def _representable(cls, value: datetime | None) -> datetime | None:
        if value is not None:
            try:
                value.astimezone(UTC)
            except (OverflowError, ValueError):
                raise ValueError(
                    "is outside the representable calendar once converted to UTC"
                ) from None
        return value

    @property
    def human_valence(self) -> float | None:
        """The ratings' mean on the model's scale (-1..1), as the training set computes it."""
        return None if not self.ratings else sum(self.ratings) / len(self.ratings) / 4.0

    def to_state(self) -> StimulusData:
        """The checkpointed form: JSON values, unset cues left out."""
        return cast(StimulusData, self.model_dump(mode="json", exclude_none=True))


class Appraisal(NamedTuple):
    """An appraiser's answer that says what produced it (``emily-appraisal/3``, ``anchor``) and,
    when it is a fallback, why (the turn is then degraded with that reason)."""

    values: Mapping[str, float]
    source: str
    degraded: str | None = None


class Appraiser(Protocol):
    """A model's estimate of some cues (any of ``CUES``) from the text and its embedding: plain
    values, or an ``Appraisal`` that names its source.

    Called in a worker thread under the turn's time budget; what it returns is checked (known
    names, finite, in range) and anything wrong is a degraded note, never a failed turn."""

    def __call__(
        self, text: str, embedding: Sequence[float] | None
    ) -> Mapping[str, float] | Appraisal: ...


def checked_appraisal(values: Mapping[str, float]) -> dict[str, float]:
    """The appraiser's answer as cues, or ``ValueError`` saying what is wrong with it."""
    cues: dict[str, float] = {}
    for name, value in values.items():
        if name not in CUES:
            raise ValueError(f"unknown cue {name!r}")
        number = float(value)
        low = 0.0 if name in UNIT_CUES else -1.0
        if not math.isfinite(number) or not low <= number <= 1.0:
            raise ValueError(f"{name} = {number!r} is outside [{low:g}, 1]")
        cues[name] = number
    return cues


def _score(words: list[str], lexicon: frozenset[str]) -> float:
    hits = sum(1 for w in words if w in lexicon)
    return min(1.0, 0.45 * hits)


def features(stimulus: Stimulus, appraised: Mapping[str, float] | None = None) -> dict[str, float]:
    """Cues in ``[0, 1]`` (threat, social, novelty, reward) and V/A/D in ``[-1, 1]``: given by
    the sender, else appraised (``checked_appraisal``), else from the word list."""
    appraised = appraised or {}
    words = _WORD.findall(stimulus.text.lower())
    cues = {name: appraised.get(name, _score(words, LEXICON[name])) for name in UNIT_CUES}
    for name in cues:
        given = getattr(stimulus, name)
        if given is not None:
            cues[name] = float(given)
    negative = _score(words, LEXICON["negative"])
    valence = 0.8 * cues["reward"] + 0.3 * cues["social"] - 0.9 * cues["threat"] - 0.6 * negative
    arousal = 0.9 * cues["threat"] + 0.4 * cues["novelty"] + 0.2 * cues["reward"] - 0.3
    dominance = 0.3 * cues["reward"] + 0.2 * cues["social"] - 0.7 * cues["threat"]
    vad = {"valence": valence, "arousal": arousal, "dominance": dominance}
    for name in vad:
        given = getattr(stimulus, name)
        if given is not None:
            vad[name] = float(given)
        elif name in appraised:
            vad[name] = appraised[name]
        else:
            vad[name] = max(-1.0, min(1.0, vad[name]))
    return {**cues, **vad}


def salience(cues: dict[str, float]) -> float:
    """How much a stimulus demands attention, in ``[0, 1]``."""
    peak = max(
        cues.get("threat", 0.0),
        cues.get("novelty", 0.0),
        abs(cues.get("valence", 0.0)),
        0.7 * cues.get("social", 0.0),
        0.7 * cues.get("reward", 0.0),
    )
    return min(1.0, 0.2 + 0.8 * peak)


def when(stimulus: Stimulus, now: datetime) -> datetime:
    return stimulus.at if stimulus.at is not None else now
