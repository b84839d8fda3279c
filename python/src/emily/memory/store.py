"""``MemoryStore``: add and search episodes in PostgreSQL + pgvector.

Writes go through binary ``COPY`` in one transaction per batch, so a batch is stored entirely or
not at all (a crash mid-batch rolls it back). Searches set ``hnsw.ef_search`` and
``hnsw.iterative_scan`` with ``set_config(..., true)``: transaction-scoped, so a pooled
connection never leaks one query's settings into the next.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import psycopg
from pgvector import HalfVector, Vector
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from emily.config import Settings
from emily.errors import ConfigError, StackError
from emily.locator import postgres_dsn
from emily.memory import search_sql
from emily.memory.errors import InvalidEpisodeError, MemoryStoreError
from emily.memory.migrations import PARTITION_FUNCTION, TABLE, embedding_type, months_ahead
from emily.memory.migrations import migrate as run_migrations
from emily.memory.models import (
    Affect,
    Episode,
    SearchResult,
    to_affect,
    validate_batch,
    validate_vector,
)
from emily.telemetry.logs import get_logger

if TYPE_CHECKING:
    from emily.memory.embedding import Embedder

log = get_logger("memory.store")

Mode = Literal["semantic", "affective", "hybrid"]
_COPY_COLUMNS = ["id", "occurred_at", "content", "affect", "embedding", "context"]


def _configure(conn: psycopg.Connection[Any]) -> None:
    register_vector(conn)


def month_of(moment: datetime) -> date:
    utc = moment.astimezone(UTC)
    return date(utc.year, utc.month, 1)


class MemoryStore:
    """Episodic memory on the configured (or local-stack) PostgreSQL, as the app role."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        # Agents call the store from worker threads: only one of them may create the pool.
        self._pool_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> MemoryStore:
        store = cls(settings, embedder)
        store._get_pool()
        return store

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def migrate(self) -> None:
        """Create or update the schema (idempotent); uses the admin DSN."""
        run_migrations(self.settings)

    def _get_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        if self._pool is not None:
            return self._pool
        with self._pool_lock:
            if self._pool is None:
                self._pool = self._open_pool()
            pool = self._pool
        self._ensure_partitions(months_ahead(self.settings.database.partitions_ahead))
        return pool

    def _open_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        dsn = postgres_dsn(self.settings)
        db = self.settings.database
        self._check_schema(dsn)
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            dsn,
            min_size=db.pool_min_size,
            max_size=db.pool_max_size,
            configure=_configure,
            kwargs={"options": f"-c statement_timeout={db.statement_timeout_ms}"},
            open=False,
            name="emily-memory",
        )
        try:
            pool.open(wait=True, timeout=30)
        except PoolTimeout as exc:  # pragma: no cover - _check_schema connected a moment ago
            pool.close()
            raise StackError("cannot open connections to PostgreSQL") from exc
        return pool

    def _check_schema(self, dsn: str) -> None:
        try:
            with psycopg.connect(dsn, connect_timeout=10) as conn:
                row = conn.execute("SELECT to_regclass(%s)", (f"public.{TABLE}",)).fetchone()
        except psycopg.OperationalError as exc:
            raise StackError(
                f"cannot connect to PostgreSQL: {str(exc).strip().splitlines()[0]}",
                hint="is the stack up (`emily up`)?",
            ) from exc
        if row is None or row[0] is None:
            raise MemoryStoreError(
                "the episodic memory schema does not exist", hint="run `emily memory migrate`"
            )

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in a transaction; a lost server becomes a typed error (the
        server rolls the open transaction back, so nothing of it was written)."""
        pool = self._get_pool()
        try:
            with pool.connection() as conn, conn.transaction():
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise MemoryStoreError(
                f"database error, nothing of this transaction was written: {str(exc).strip()}"
            ) from exc

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from emily.memory.embedding import create_embedder

            self._embedder = create_embedder(self.settings)
        if self._embedder.dim != self.settings.database.embedding_dim:
            raise ConfigError(
                f"the embedder makes {self._embedder.dim}-d vectors, the database stores "
                f"{self.settings.database.embedding_dim}-d",
                field="EMILY_DATABASE__EMBEDDING_DIM",
            )
        return self._embedder

    def _db_vector(self, values: Sequence[float] | np.ndarray) -> HalfVector | Vector:
        array = np.asarray(values, dtype=np.float32)
        if self.settings.database.embedding_storage == "halfvec":
            return HalfVector(array)
        return Vector(array)

    def _timed(
        self, conn: psycopg.Connection[Any], name: str, query: sql.Composed, params: Any
    ) -> list[dict[str, Any]]:
        start = time.perf_counter()
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            rows = cur.fetchall()
        elapsed_ms = (time.perf_counter() - start) * 1000
        if elapsed_ms > self.settings.database.slow_query_ms:
            # Parameter values may be private memories: only their count is logged.
            log.warning("slow_query", sql=name, ms=round(elapsed_ms, 2), params=len(params or ()))
        return rows

    def _ensure_partitions(self, months: Sequence[date]) -> None:
        # Own short transaction: creating a partition locks the parent table, and that lock
        # should not be held for the whole COPY of a batch.
        with self._transaction() as conn:
            conn.execute(
                sql.SQL("SELECT public.{}(m) FROM unnest(%s::date[]) AS m").format(
                    sql.Identifier(PARTITION_FUNCTION)
                ),
                (sorted(set(months)),),
            )

    # -- writes ------------------------------------------------------------------------------
    def add(self, episode: Episode | dict[str, Any]) -> int:
        return self.add_many([episode])[0]

    def add_many(
        self, episodes: Sequence[Episode | dict[str, Any]], *, batch_row_offset: int = 0
    ) -> list[int]:
        """Store a batch atomically (binary COPY, one transaction); returns the new ids in order.

        Every episode is validated first; an invalid one raises ``InvalidEpisodeError`` naming
        its field and row (``index + batch_row_offset``) and nothing is written.
        """
        db = self.settings.database
        batch = validate_batch(
            episodes, offset=batch_row_offset, dim=db.embedding_dim, max_chars=db.max_content_chars
        )
        if not batch:
            return []
        vectors = self._embeddings(batch, batch_row_offset)
        try:
            self._ensure_partitions([month_of(e.occurred_at) for e in batch])
            with self._transaction() as conn:
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT nextval(pg_get_serial_sequence(%s, 'id'))"
                        " FROM generate_series(1, %s)",
                        (f"public.{TABLE}", len(batch)),
                    )
                ]
                copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                    sql.Identifier(TABLE), sql.SQL(", ").join(map(sql.Identifier, _COPY_COLUMNS))
                )
                with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                    copy.set_types(
                        [
                            "int8",
                            "timestamptz",
                            "text",
                            "vector",
                            db.embedding_storage,
                            "jsonb",
                        ]
                    )
                    for new_id, episode, vector in zip(ids, batch, vectors, strict=True):
                        copy.write_row(
                            (
                                new_id,
                                episode.occurred_at,
                                episode.content,
                                Vector(episode.affect.as_list()),
                                vector,
                                Jsonb(episode.context),
                            )
                        )
        except psycopg.errors.DataError as exc:  # pragma: no cover - validation comes first
            raise InvalidEpisodeError(f"rejected by the database: {exc}") from exc
        log.debug("batch_written", rows=len(ids))
        return ids

    def _embeddings(self, batch: Sequence[Episode], offset: int) -> list[HalfVector | Vector]:
        missing = [i for i, e in enumerate(batch) if e.embedding is None]
        computed: dict[int, np.ndarray] = {}
        if missing:
            matrix = self.embedder.embed([batch[i].content for i in missing])
            for position, index in enumerate(missing):
                row = matrix[position]
                if not bool(np.isfinite(row).all()):  # pragma: no cover - embedder contract
                    raise InvalidEpisodeError(
                        "the embedder produced NaN/Inf", field="embedding", row=index + offset
                    )
                computed[index] = row
        result = []
        for index, episode in enumerate(batch):
            values = episode.embedding if episode.embedding is not None else computed[index]
            result.append(self._db_vector(values))
        return result

    # -- reads -------------------------------------------------------------------------------
    def count(self) -> int:
        with self._transaction() as conn:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(TABLE)))
            value = row.fetchone()
        return int(value[0]) if value else 0

    def _prepare(
        self,
        query_text: str | None,
        query_vector: Sequence[float] | None,
        affect: Affect | Sequence[float] | None,
        mode: Mode,
        k: int,
        filters: search_sql.Filters,
        semantic_weight: float,
    ) -> tuple[str, sql.Composed, dict[str, Any]]:
        db = self.settings.database
        if mode not in ("semantic", "affective", "hybrid"):
            raise InvalidEpisodeError(f"unknown mode {mode!r}", field="mode")
        if not 1 <= k <= 1000:
            raise InvalidEpisodeError("k must be between 1 and 1000", field="k")
        if not 0.0 <= semantic_weight <= 1.0:
            raise InvalidEpisodeError("must be in [0, 1]", field="semantic_weight")
        params: dict[str, Any] = {"k": k}
        if mode in ("semantic", "hybrid"):
            if query_vector is not None:
                vector = validate_vector(query_vector, dim=db.embedding_dim, field="query_vector")
            elif query_text is not None and query_text.strip():
                vector = [float(v) for v in self.embedder.embed([query_text])[0]]
            else:
                raise InvalidEpisodeError(
                    f"{mode} search needs a query text or vector", field="query_text"
                )
            params["q"] = self._db_vector(vector)
        if mode in ("affective", "hybrid"):
            if affect is None:
                raise InvalidEpisodeError(f"{mode} search needs an affect", field="affect")
            params["a"] = Vector(to_affect(affect).as_list())
        for name in ("since", "until"):
            moment = getattr(filters, name)
            if moment is not None and moment.tzinfo is None:
                raise InvalidEpisodeError("timestamp must carry a UTC offset", field=name)
        qcast = embedding_type(self.settings)
        if mode == "semantic":
            query = search_sql.semantic(filters, qcast)
        elif mode == "affective":
            query = search_sql.affective(filters)
        else:
            params["w"] = float(semantic_weight)
            # Each index contributes a few times k candidates so the re-scored union is rich
            # enough for either weight extreme.
            params["candidates"] = max(4 * k, 40)
            query = search_sql.hybrid(filters, qcast)
        params.update(filters.params)
        return f"search_{mode}", query, params

    def _session_settings(self, conn: psycopg.Connection[Any], ef_search: int | None) -> None:
        ef = ef_search if ef_search is not None else self.settings.database.ef_search
        if not 1 <= ef <= 1000:
            raise InvalidEpisodeError("ef_search must be between 1 and 1000", field="ef_search")
        conn.execute(
            "SELECT set_config('hnsw.ef_search', %s, true),"
            " set_config('hnsw.iterative_scan', 'relaxed_order', true)",
            (str(ef),),
        )

    def search(
        self,
        query_text: str | None = None,
        query_vector: Sequence[float] | None = None,
        *,
        affect: Affect | Sequence[float] | None = None,
        mode: Mode = "semantic",
        k: int = 10,
        since: datetime | None = None,
        until: datetime | None = None,
        min_valence: float | None = None,
        max_valence: float | None = None,
        min_arousal: float | None = None,
        max_arousal: float | None = None,
        context: dict[str, Any] | None = None,
        semantic_weight: float = 0.7,
        ef_search: int | None = None,
    ) -> list[SearchResult]:
        """Nearest episodes by meaning, affect or both, within the filters; closest first."""
        filters = search_sql.Filters(
            since, until, min_valence, max_valence, min_arousal, max_arousal, context
        )
        name, query, params = self._prepare(
            query_text, query_vector, affect, mode, k, filters, semantic_weight
        )
        with self._transaction() as conn:
            self._session_settings(conn, ef_search)
            rows = self._timed(conn, name, query, params)
        return [
            SearchResult(
                id=row["id"],
                occurred_at=row["occurred_at"],
                content=row["content"],
                affect=Affect.model_validate(row["affect"].to_list()),
                context=row["context"],
                distance=float(row["distance"]),
                similarity=float(row["similarity"]),
            )
            for row in rows
        ]

    def explain(
        self,
        query_text: str | None = None,
        query_vector: Sequence[float] | None = None,
        *,
        affect: Affect | Sequence[float] | None = None,
        mode: Mode = "semantic",
        k: int = 10,
        since: datetime | None = None,
        until: datetime | None = None,
        min_valence: float | None = None,
        max_valence: float | None = None,
        min_arousal: float | None = None,
        max_arousal: float | None = None,
        context: dict[str, Any] | None = None,
        semantic_weight: float = 0.7,
        ef_search: int | None = None,
    ) -> str:
        """``EXPLAIN (ANALYZE, BUFFERS)`` of the search these arguments would run."""
        filters = search_sql.Filters(
            since, until, min_valence, max_valence, min_arousal, max_arousal, context
        )
        _, query, params = self._prepare(
            query_text, query_vector, affect, mode, k, filters, semantic_weight
        )
        with self._transaction() as conn:
            self._session_settings(conn, ef_search)
            lines = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + query, params)
            return "\n".join(str(line[0]) for line in lines)
