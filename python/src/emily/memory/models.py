"""Typed episodes and search results, validated before any SQL runs."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from emily.memory.errors import InvalidEpisodeError


class Affect(BaseModel):
    """Affective state: valence, arousal, dominance, each in [-1, 1]."""

    model_config = ConfigDict(frozen=True)

    valence: float = Field(ge=-1.0, le=1.0, allow_inf_nan=False)
    arousal: float = Field(ge=-1.0, le=1.0, allow_inf_nan=False)
    dominance: float = Field(ge=-1.0, le=1.0, allow_inf_nan=False)

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
    occurred_at: AwareDatetime
    affect: Affect
    context: dict[str, Any] = Field(default_factory=dict)
    embedding: list[float] | None = None

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content is empty")
        if "\x00" in value:
            raise ValueError("content contains a NUL character")
        return value

    @field_validator("embedding")
    @classmethod
    def _finite(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and not bool(np.isfinite(np.asarray(value, dtype=np.float64)).all()):
            raise ValueError("embedding contains NaN or Inf")
        return value

    @field_validator("context")
    @classmethod
    def _json(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"context is not plain JSON: {exc}") from exc
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


def _field_of(error: Any) -> str:
    return ".".join(str(part) for part in error["loc"]) or "episode"


def validate_episode(
    raw: Episode | dict[str, Any], *, row: int, dim: int, max_chars: int
) -> Episode:
    """Validate one episode against the model and the settings; errors name field and row."""
    try:
        episode = raw if isinstance(raw, Episode) else Episode.model_validate(raw)
        if isinstance(raw, Episode):
            # A model built with model_construct or mutated after creation is checked again.
            episode = Episode.model_validate(raw.model_dump())
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidEpisodeError(first["msg"], field=_field_of(first), row=row) from exc
    if len(episode.content) > max_chars:
        raise InvalidEpisodeError(
            f"content has {len(episode.content)} characters, the limit is {max_chars}",
            field="content",
            row=row,
            hint="raise EMILY_DATABASE__MAX_CONTENT_CHARS or split the text",
        )
    if episode.embedding is not None and len(episode.embedding) != dim:
        raise InvalidEpisodeError(
            f"embedding has {len(episode.embedding)} dimensions, expected {dim}",
            field="embedding",
            row=row,
        )
    return episode


def validate_batch(
    episodes: Sequence[Episode | dict[str, Any]], *, offset: int, dim: int, max_chars: int
) -> list[Episode]:
    return [
        validate_episode(raw, row=index + offset, dim=dim, max_chars=max_chars)
        for index, raw in enumerate(episodes)
    ]


def validate_vector(values: Sequence[float], *, dim: int, field: str) -> list[float]:
    """A query vector: right length, finite."""
    vector = [float(v) for v in values]
    if len(vector) != dim:
        raise InvalidEpisodeError(f"has {len(vector)} dimensions, expected {dim}", field=field)
    if not all(math.isfinite(v) for v in vector):
        raise InvalidEpisodeError("contains NaN or Inf", field=field)
    return vector


def to_affect(value: Affect | Sequence[float], *, field: str = "affect") -> Affect:
    if isinstance(value, Affect):
        return value
    try:
        return Affect.model_validate(list(value))
    except (ValidationError, TypeError) as exc:
        raise InvalidEpisodeError(f"invalid affect {value!r}", field=field) from exc
