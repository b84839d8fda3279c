"""Typed episodes and search results, validated before any SQL runs.

Validation is strict where lax coercion used to let nonsense through (``true`` as an affect
value, ``"0.1"`` as an embedding component) and catches, with field and row named, everything
PostgreSQL or a renderer would otherwise choke on later: NUL characters and lone surrogates,
contexts too deep or too large, embedding values a ``halfvec`` cannot hold, timestamps outside
the accepted window (or outside the calendar once converted to UTC).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from emily.jsonio import problem_in, text_problem
from emily.memory.errors import InvalidEpisodeError
from emily.memory.settings import DatabaseSettings
from emily.memory.window import Window, accepted_window

# The largest finite IEEE half-precision value: beyond it a halfvec component is infinite.
HALFVEC_MAX = 65504.0
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _number(value: Any) -> Any:
    """Only real numbers: pydantic's lax mode would read ``true`` as 1.0 and ``"0.1"`` as 0.1."""
    numeric = (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, numeric):
        raise ValueError("must be a number")
    return float(value)


Number = Annotated[float, BeforeValidator(_number)]


def _timestamp(value: Any) -> Any:
    """Only ISO-8601 text or a datetime: lax mode would read 1700000000 (or "1700000000") as a
    Unix time."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 timestamp with a UTC offset")
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 timestamp: {value[:40]!r}") from exc


Timestamp = Annotated[AwareDatetime, BeforeValidator(_timestamp)]


class Affect(BaseModel):
    """Affective state: valence, arousal, dominance, each in [-1, 1]."""

    model_config = ConfigDict(frozen=True)

    valence: Number = Field(ge=-1.0, le=1.0, allow_inf_nan=False)
    arousal: Number = Field(ge=-1.0, le=1.0, allow_inf_nan=False)
    dominance: Number = Field(ge=-1.0, le=1.0, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _from_sequence(cls, value: Any) -> Any:
        if isinstance(value, list | tuple | np.ndarray):
            items = list(value)
            if len(items) != 3:
                raise ValueError("affect needs exactly 3 values [valence, arousal, dominance]")
            return {"valence": items[0], "arousal": items[1], "dominance": items[2]}
        return value

    def as_list(self) -> list[float]:
        return [self.valence, self.arousal, self.dominance]


class Episode(BaseModel):
    """One remembered episode as the caller hands it in."""

    model_config = ConfigDict(extra="forbid")

    content: str
    occurred_at: Timestamp
    affect: Affect
    context: dict[str, Any] = Field(default_factory=dict)
    embedding: list[Number] | None = None

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content is empty")
        problem = text_problem(value)
        if problem:
            raise ValueError(f"content {problem}")
        return value

    @field_validator("embedding")
    @classmethod
    def _finite(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and not all(math.isfinite(v) for v in value):
            raise ValueError("embedding contains NaN or Inf")
        return value


class SearchResult(BaseModel):
    """One recalled episode; ``distance`` is the metric of the mode, ``similarity`` in [0, 1]
    for semantic and affective mode (higher is closer), and the weighted score for hybrid."""

    id: int
    occurred_at: datetime
    content: str
    affect: Affect
    context: dict[str, Any]
    distance: float
    similarity: float


@dataclass(frozen=True)
class EpisodeLimits:
    """What the database settings allow in one episode (``window=None``: any timestamp)."""

    dim: int
    max_chars: int = 16_384
    max_context_bytes: int = 65_536
    max_context_depth: int = 16
    storage: Literal["halfvec", "vector"] = "halfvec"
    window: Window | None = None

    @classmethod
    def of(cls, settings: DatabaseSettings) -> EpisodeLimits:
        return cls(
            dim=settings.embedding_dim,
            max_chars=settings.max_content_chars,
            max_context_bytes=settings.max_context_bytes,
            max_context_depth=settings.max_context_depth,
            storage=settings.embedding_storage,
            window=accepted_window(settings),
        )

    @property
    def max_component(self) -> float:
        return HALFVEC_MAX if self.storage == "halfvec" else FLOAT32_MAX


def _field_of(error: Any) -> str:
    return ".".join(str(part) for part in error["loc"]) or "episode"


def context_problem(
    value: Any, limits: EpisodeLimits, *, field: str = "context", row: int | None = None
) -> None:
    """Raise if a context is not a plain, bounded JSON object; checked before pydantic sees it,
    iteratively, so no depth can exhaust the stack."""
    if not isinstance(value, dict):
        return  # pydantic names the wrong type
    found = problem_in(value, max_depth=limits.max_context_depth)
    if found is not None:
        where, reason = found
        raise InvalidEpisodeError(
            reason,
            field=f"{field}.{where}" if where else field,
            row=row,
            hint=f"EMILY_DATABASE__MAX_CONTEXT_DEPTH is {limits.max_context_depth}"
            if "nested" in reason
            else None,
        )
    try:
        size = len(
            json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()
        )
    except (TypeError, ValueError) as exc:
        raise InvalidEpisodeError(f"is not plain JSON: {exc}", field=field, row=row) from exc
    if size > limits.max_context_bytes:
        raise InvalidEpisodeError(
            f"has {size} bytes of JSON, the limit is {limits.max_context_bytes}",
            field=field,
            row=row,
            hint="raise EMILY_DATABASE__MAX_CONTEXT_BYTES or store less context",
        )


def _fields_of(raw: Episode) -> dict[str, Any]:
    """An episode's fields without serialising them (a hostile context could be too deep for
    pydantic's serialiser): a model built with ``model_construct`` or mutated after creation is
    validated again from these."""
    affect = raw.affect
    return {
        "content": raw.content,
        "occurred_at": raw.occurred_at,
        "affect": affect.as_list() if isinstance(affect, Affect) else affect,
        "context": raw.context,
        "embedding": raw.embedding,
    }


def validate_episode(raw: Episode | dict[str, Any], *, row: int, limits: EpisodeLimits) -> Episode:
    """Validate one episode against the model and the limits; errors name field and row."""
    fields = _fields_of(raw) if isinstance(raw, Episode) else raw
    if not isinstance(fields, dict):
        raise InvalidEpisodeError("an episode must be a JSON object", field="episode", row=row)
    context_problem(fields.get("context"), limits, row=row)
    try:
        episode = Episode.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidEpisodeError(first["msg"], field=_field_of(first), row=row) from exc
    if len(episode.content) > limits.max_chars:
        raise InvalidEpisodeError(
            f"content has {len(episode.content)} characters, the limit is {limits.max_chars}",
            field="content",
            row=row,
            hint="raise EMILY_DATABASE__MAX_CONTENT_CHARS or split the text",
        )
    if episode.embedding is not None:
        check_vector(episode.embedding, limits, field="embedding", row=row)
    if limits.window is not None:
        problem = limits.window.problem(episode.occurred_at)
        if problem:
            raise InvalidEpisodeError(
                f"{episode.occurred_at.isoformat()} {problem}",
                field="occurred_at",
                row=row,
                hint="see EMILY_DATABASE__OCCURRED_AT_PAST_DAYS / _FUTURE_DAYS",
            )
    return episode


def check_vector(
    vector: Sequence[float], limits: EpisodeLimits, *, field: str, row: int | None = None
) -> None:
    if len(vector) != limits.dim:
        raise InvalidEpisodeError(
            f"has {len(vector)} dimensions, expected {limits.dim}", field=field, row=row
        )
    if not all(math.isfinite(v) for v in vector):
        raise InvalidEpisodeError("contains NaN or Inf", field=field, row=row)
    biggest = max((abs(v) for v in vector), default=0.0)
    if biggest > limits.max_component:
        raise InvalidEpisodeError(
            f"has a component of magnitude {biggest:g}, beyond what {limits.storage} holds "
            f"(±{limits.max_component:g})",
            field=field,
            row=row,
            hint="normalise the vector",
        )


def validate_batch(
    episodes: Sequence[Episode | dict[str, Any]], *, offset: int, limits: EpisodeLimits
) -> list[Episode]:
    return [
        validate_episode(raw, row=index + offset, limits=limits)
        for index, raw in enumerate(episodes)
    ]


def validate_vector(values: Sequence[float], *, limits: EpisodeLimits, field: str) -> list[float]:
    """A query vector: numbers, right length, finite, within the storage type's range."""
    try:
        vector = [_number(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise InvalidEpisodeError("must be a sequence of numbers", field=field) from exc
    check_vector(vector, limits, field=field)
    return vector


def to_affect(value: Affect | Sequence[float], *, field: str = "affect") -> Affect:
    if isinstance(value, Affect):
        return value
    try:
        return Affect.model_validate(list(value))
    except (ValidationError, TypeError) as exc:
        raise InvalidEpisodeError(f"invalid affect {value!r}", field=field) from exc
