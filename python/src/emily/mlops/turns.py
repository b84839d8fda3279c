"""The agent's stored turns as the model loop sees them: what monitoring, the A/B report and
drift-triggered retraining read from episodic memory.

An agent turn is an episode whose context names a thread; consolidate stores with it what the
appraisal said (``appraised_by``, ``appraised_valence``), the stimulus's human ratings when it
had some (``ratings``, ``human_valence``, ``appraisal_error``) and the thread's A/B arm
(``ab_experiment``, ``ab_arm``). Corpus episodes (no thread) are not turns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from emily.locator import postgres_dsn
from emily.memory.connect import connect

if TYPE_CHECKING:
    from emily.config import Settings

_COLUMNS = "occurred_at, content, embedding::real[], context"


@dataclass(frozen=True)
class Turn:
    occurred_at: datetime
    text: str
    embedding: np.ndarray[Any, np.dtype[np.float64]] | None
    context: dict[str, Any]

    @property
    def appraised_by(self) -> str:
        return str(self.context.get("appraised_by", "words"))

    @property
    def appraised_valence(self) -> float | None:
        value = self.context.get("appraised_valence")
        return None if value is None else float(value)

    @property
    def human_valence(self) -> float | None:
        value = self.context.get("human_valence")
        return None if value is None else float(value)

    @property
    def error(self) -> float | None:
        value = self.context.get("appraisal_error")
        return None if value is None else float(value)

    @property
    def ratings(self) -> list[int] | None:
        value = self.context.get("ratings")
        return [int(r) for r in value] if isinstance(value, list) else None

    @property
    def degraded(self) -> bool:
        return bool(self.context.get("degraded"))


def _turn(row: tuple[Any, ...]) -> Turn:
    occurred_at, content, embedding, context = row
    vector = None if embedding is None else np.asarray(embedding, dtype=np.float64)
    return Turn(occurred_at, content, vector, dict(context or {}))


# A model's traffic: the turns one of its versions appraised (``appraised_by`` is
# ``<model>/<version>``). Other models' turns, and turns the anchor method appraised while no
# version was loaded, are not evidence about this model.
_OF_MODEL = "starts_with(context->>'appraised_by', %s)"


def _model_prefix(settings: Settings) -> str:
    return f"{settings.mlops.model_name}/"


def recent_turns(settings: Settings, limit: int) -> list[Turn]:
    """The last ``limit`` turns the model appraised, oldest first."""
    query = (
        f"SELECT {_COLUMNS} FROM public.episodic_memories WHERE context ? 'thread_id' "
        f"AND {_OF_MODEL} ORDER BY occurred_at DESC, id DESC LIMIT %s"
    )
    with connect(postgres_dsn(settings), autocommit=True) as conn:
        rows = conn.execute(query, (_model_prefix(settings), limit)).fetchall()
    return [_turn(r) for r in reversed(rows)]


def experiment_turns(settings: Settings, experiment: str) -> list[Turn]:
    """Every turn of an A/B experiment that has an outcome (an appraisal error), oldest first."""
    query = (
        f"SELECT {_COLUMNS} FROM public.episodic_memories "
        "WHERE context->>'ab_experiment' = %s AND context ? 'appraisal_error' "
        "ORDER BY occurred_at, id"
    )
    with connect(postgres_dsn(settings), autocommit=True) as conn:
        rows = conn.execute(query, (experiment,)).fetchall()
    return [_turn(r) for r in rows]


def experiments(settings: Settings) -> list[tuple[str, datetime]]:
    """Every A/B experiment that recorded an arm, with its last turn, newest first."""
    query = (
        "SELECT context->>'ab_experiment', max(occurred_at) FROM public.episodic_memories "
        "WHERE context ? 'ab_experiment' GROUP BY 1 ORDER BY 2 DESC"
    )
    with connect(postgres_dsn(settings), autocommit=True) as conn:
        return [(str(r[0]), r[1]) for r in conn.execute(query).fetchall()]


def labelled_since(settings: Settings, since: datetime | None) -> list[Turn]:
    """The model's turns with human ratings stored after ``since`` (``created_at``; all when
    ``None``): the new data a retraining registers."""
    query = (
        f"SELECT {_COLUMNS} FROM public.episodic_memories "
        f"WHERE context ? 'thread_id' AND context ? 'ratings' AND {_OF_MODEL} "
        "AND (%s::timestamptz IS NULL OR created_at > %s::timestamptz) ORDER BY created_at, id"
    )
    with connect(postgres_dsn(settings), autocommit=True) as conn:
        rows = conn.execute(query, (_model_prefix(settings), since, since)).fetchall()
    return [_turn(r) for r in rows]


def thread_turns(settings: Settings, prefix: str) -> list[Turn]:
    """Every turn of the threads whose id starts with ``prefix``, oldest first."""
    query = (
        f"SELECT {_COLUMNS} FROM public.episodic_memories "
        "WHERE starts_with(context->>'thread_id', %s) ORDER BY occurred_at, id"
    )
    with connect(postgres_dsn(settings), autocommit=True) as conn:
        rows = conn.execute(query, (prefix,)).fetchall()
    return [_turn(r) for r in rows]
