"""Stimuli as they arrive, and what perception makes of them before any memory or model is used.

A stimulus is one JSON object (one line of a ``.jsonl`` file, or one API request body). Cues that
the sender knows (``threat``, ``valence`` ...) are taken as given; the others are estimated from a
small word list, which is crude but instant and needs nothing that can fail.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

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
    """One stimulus. Only ``text`` is required; cue values override the word-list estimates."""

    model_config = ConfigDict(extra="forbid")

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


def _score(words: list[str], lexicon: frozenset[str]) -> float:
    hits = sum(1 for w in words if w in lexicon)
    return min(1.0, 0.45 * hits)


def features(stimulus: Stimulus) -> dict[str, float]:
    """Cues in ``[0, 1]`` (threat, social, novelty, reward) and V/A/D in ``[-1, 1]``."""
    words = _WORD.findall(stimulus.text.lower())
    cues = {
        name: _score(words, LEXICON[name]) for name in ("threat", "social", "novelty", "reward")
    }
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
        vad[name] = float(given) if given is not None else max(-1.0, min(1.0, vad[name]))
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
