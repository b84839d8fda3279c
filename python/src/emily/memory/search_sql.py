"""SQL of the three search modes, composed from fixed fragments; every value is a parameter.

Scores (documented in docs/memory.md):

* semantic: ``distance = embedding <=> q`` (cosine distance), ``similarity = 1 - distance``;
* affective: ``distance = affect <-> a`` (L2), ``similarity = 1 - distance / (2*sqrt(3))``
  (2*sqrt(3) is the diameter of the [-1, 1]^3 cube, so similarity stays in [0, 1]);
* hybrid: ``similarity = w * cos_sim + (1 - w) * affect_sim``, ``distance = 1 - similarity``,
  re-scored exactly over the union of both indexes' candidate lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from emily.memory.migrations import TABLE

AFFECT_DIAMETER = 2 * 3**0.5

_COLUMNS = sql.SQL("id, occurred_at, content, affect, context")


@dataclass
class Filters:
    since: datetime | None = None
    until: datetime | None = None
    min_valence: float | None = None
    max_valence: float | None = None
    min_arousal: float | None = None
    max_arousal: float | None = None
    context: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def where(self, *extra: str) -> sql.Composable:
        clauses: list[sql.Composable] = [sql.SQL(text) for text in extra]
        checks = [
            ("since", "occurred_at >= %(since)s"),
            ("until", "occurred_at < %(until)s"),
            ("min_valence", "(affect::real[])[1] >= %(min_valence)s"),
            ("max_valence", "(affect::real[])[1] <= %(max_valence)s"),
            ("min_arousal", "(affect::real[])[2] >= %(min_arousal)s"),
            ("max_arousal", "(affect::real[])[2] <= %(max_arousal)s"),
        ]
        for name, clause in checks:
            value = getattr(self, name)
            if value is not None:
                clauses.append(sql.SQL(clause))
                self.params[name] = value
        if self.context:
            clauses.append(sql.SQL("context @> %(context)s"))
            self.params["context"] = Jsonb(self.context)
        if not clauses:
            return sql.SQL("")
        return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses)


def semantic(filters: Filters, qcast: sql.Composable) -> sql.Composed:
    # The materialized CTE takes what the (relaxed-order, iterative) index scan yields; the outer
    # ORDER BY restores exact distance order.
    return sql.SQL(
        "WITH candidates AS MATERIALIZED ("
        " SELECT {cols}, embedding <=> %(q)s::{qcast} AS distance FROM {table}{where}"
        " ORDER BY embedding <=> %(q)s::{qcast} LIMIT %(k)s)"
        " SELECT *, 1 - distance AS similarity FROM candidates ORDER BY distance, id"
    ).format(
        cols=_COLUMNS,
        table=sql.Identifier(TABLE),
        where=filters.where("embedding IS NOT NULL"),
        qcast=qcast,
    )


def affective(filters: Filters) -> sql.Composed:
    return sql.SQL(
        "WITH candidates AS MATERIALIZED ("
        " SELECT {cols}, affect <-> %(a)s::vector(3) AS distance FROM {table}{where}"
        " ORDER BY affect <-> %(a)s::vector(3) LIMIT %(k)s)"
        " SELECT *, 1 - distance / {diameter} AS similarity FROM candidates"
        " ORDER BY distance, id"
    ).format(
        cols=_COLUMNS,
        table=sql.Identifier(TABLE),
        where=filters.where(),
        diameter=sql.Literal(AFFECT_DIAMETER),
    )


def hybrid(filters: Filters, qcast: sql.Composable) -> sql.Composed:
    table = sql.Identifier(TABLE)
    semantic_where = filters.where("embedding IS NOT NULL")
    affect_where = filters.where()
    return sql.SQL(
        "WITH sem AS MATERIALIZED ("
        " SELECT id, occurred_at FROM {table}{sw}"
        " ORDER BY embedding <=> %(q)s::{qcast} LIMIT %(candidates)s),"
        " aff AS MATERIALIZED ("
        " SELECT id, occurred_at FROM {table}{aw}"
        " ORDER BY affect <-> %(a)s::vector(3) LIMIT %(candidates)s),"
        " pool AS (SELECT * FROM sem UNION SELECT * FROM aff),"
        " scored AS ("
        " SELECT m.id, m.occurred_at, m.content, m.affect, m.context,"
        " %(w)s * COALESCE(1 - (m.embedding <=> %(q)s::{qcast}), 0)"
        " + (1 - %(w)s) * (1 - (m.affect <-> %(a)s::vector(3)) / {diameter}) AS similarity"
        " FROM pool JOIN {table} m USING (id, occurred_at))"
        " SELECT id, occurred_at, content, affect, context, 1 - similarity AS distance,"
        " similarity FROM scored ORDER BY similarity DESC, id LIMIT %(k)s"
    ).format(
        table=table,
        sw=semantic_where,
        aw=affect_where,
        qcast=qcast,
        diameter=sql.Literal(AFFECT_DIAMETER),
    )
