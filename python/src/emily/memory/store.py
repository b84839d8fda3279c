"""``MemoryStore``: add and search episodes in PostgreSQL + pgvector.

Writes stage a batch with binary ``COPY`` and insert it in one transaction, so a batch is
stored entirely or not at all (a crash mid-batch rolls it back), and an episode already stored
is skipped (the idempotency key), so a file can be ingested again without duplicates.
Searches set ``hnsw.ef_search`` and ``hnsw.iterative_scan`` with ``set_config(..., true)``:
transaction-scoped, so a pooled connection never leaks one query's settings into the next.

The pool checks a connection before lending it (``check_connection``), so after a PostgreSQL
restart the stale connections are replaced instead of surfacing as errors: a restart costs at
most the requests in flight at that moment.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack

import numpy as np
import psycopg
from pgvector import HalfVector, Vector
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb, set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from emily.config import Settings
from emily.errors import ConfigError, StackError
from emily.jsonio import problem_in, text_problem
from emily.locator import postgres_dsn
from emily.memory import search_sql, write_sql
from emily.memory.connect import unreachable
from emily.memory.errors import InvalidEpisodeError, MemoryStoreError
from emily.memory.migrations import (
    MIGRATE_HINT,
    PARTITION_FUNCTION,
    TABLE,
    embedding_type,
    partitions_ahead,
    require_schema,
)
from emily.memory.migrations import migrate as run_migrations
from emily.memory.models import (
    Affect,
    Episode,
    EpisodeLimits,
    SearchResult,
    check_vector,
    to_affect,
    validate_batch,
    validate_vector,
)
from emily.memory.rendering import clip_depth, loads_jsonb
from emily.telemetry.logs import get_logger

if TYPE_CHECKING:
    from emily.memory.embedding.base import Embedder

log = get_logger("memory.store")

Mode = Literal["semantic", "affective", "hybrid"]


class SearchOptions(TypedDict, total=False):
    """Everything a search takes besides the query itself (one definition for ``search`` and
    ``explain``)."""

    affect: Affect | Sequence[float] | None
    mode: Mode
    k: int
    since: datetime | None
    until: datetime | None
    min_valence: float | None
    max_valence: float | None
    min_arousal: float | None
    max_arousal: float | None
    context: dict[str, Any] | None
    semantic_weight: float
    ef_search: int | None


@dataclass(frozen=True)
class BatchResult:
    """The stored id of every episode of a batch, in order, and whether this call stored it
    (``False``: an identical episode was already there, and its id is given)."""

    ids: list[int]
    new: list[bool]

    @property
    def new_count(self) -> int:
        return sum(self.new)

    @property
    def present_count(self) -> int:
        return len(self.new) - self.new_count


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

    @property
    def limits(self) -> EpisodeLimits:
        """The settings' limits, with the accepted window as of now."""
        return EpisodeLimits.of(self.settings.database)

    def _get_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        if self._pool is not None:
            return self._pool
        with self._pool_lock:
            if self._pool is None:
                self._pool = self._open_pool()
            pool = self._pool
        self._ensure_partitions(partitions_ahead(self.settings))
        return pool

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        register_vector(conn)
        set_json_loads(loads_jsonb, conn)
        conn.execute(write_sql.create_staging(embedding_type(self.settings)))
        conn.commit()

    def _open_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        dsn = postgres_dsn(self.settings)
        db = self.settings.database
        self._check_schema(dsn)
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            dsn,
            min_size=db.pool_min_size,
            max_size=db.pool_max_size,
            configure=self._configure,
            # A connection is tested before it is lent: after a server restart the stale ones
            # are discarded and replaced instead of failing the next requests.
            check=ConnectionPool.check_connection,
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
                require_schema(conn)
        except psycopg.OperationalError as exc:
            raise unreachable(exc) from exc
        except psycopg.Error as exc:  # e.g. the app role lacks its grants
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise MemoryStoreError(
                f"cannot read the memory schema: {first}", hint=MIGRATE_HINT
            ) from exc

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
            from emily.memory.embedding.factory import create_embedder

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
        # should not be held for the whole write of a batch.
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
        """Store a batch atomically; returns the stored ids in order (for an episode that was
        already stored, the id it has)."""
        return self.add_batch(episodes, batch_row_offset=batch_row_offset).ids

    def add_batch(
        self, episodes: Sequence[Episode | dict[str, Any]], *, batch_row_offset: int = 0
    ) -> BatchResult:
        """Store a batch atomically and say which episodes were new.

        Every episode is validated first, including the accepted ``occurred_at`` window (so
        partitions are only ever created inside it, whoever calls); an invalid one raises
        ``InvalidEpisodeError`` naming its field and row (``index + batch_row_offset``) and
        nothing is written.
        """
        limits = self.limits
        batch = validate_batch(episodes, offset=batch_row_offset, limits=limits)
        if not batch:
            return BatchResult([], [])
        vectors = self._embeddings(batch, batch_row_offset, limits)
        storage = self.settings.database.embedding_storage
        try:
            self._ensure_partitions([month_of(e.occurred_at) for e in batch])
            with self._transaction() as conn:
                ids = [
                    int(r[0])
                    for r in conn.execute(write_sql.reserve_ids(), (f"public.{TABLE}", len(batch)))
                ]
                with conn.cursor() as cur, cur.copy(write_sql.copy_into_staging()) as copy:
                    copy.set_types(write_sql.copy_types(storage))
                    for ord_, (new_id, episode, vector) in enumerate(
                        zip(ids, batch, vectors, strict=True)
                    ):
                        copy.write_row(
                            (
                                ord_,
                                new_id,
                                episode.occurred_at,
                                episode.content,
                                Vector(episode.affect.as_list()),
                                vector,
                                Jsonb(episode.context),
                            )
                        )
                inserted = {int(r[0]) for r in conn.execute(write_sql.insert_new())}
                if len(inserted) < len(batch):
                    stored = {int(o): int(i) for o, i in conn.execute(write_sql.stored_ids())}
                    ids = [stored[position] for position in range(len(batch))]
        except psycopg.errors.DataError as exc:  # pragma: no cover - validation comes first
            raise InvalidEpisodeError(f"rejected by the database: {exc}") from exc
        # A repeated episode within one batch maps to the first one's id: only that is new.
        seen: set[int] = set()
        new = []
        for i in ids:
            new.append(i in inserted and i not in seen)
            seen.add(i)
        log.debug("batch_written", rows=len(ids), new=sum(new))
        return BatchResult(ids, new)

    def _embeddings(
        self, batch: Sequence[Episode], offset: int, limits: EpisodeLimits
    ) -> list[HalfVector | Vector]:
        missing = [i for i, e in enumerate(batch) if e.embedding is None]
        computed: dict[int, np.ndarray] = {}
        if missing:
            matrix = self.embedder.embed([batch[i].content for i in missing])
            for position, index in enumerate(missing):
                row = matrix[position]
                check_vector([float(v) for v in row], limits, field="embedding", row=index + offset)
                computed[index] = row
        result = []
        for index, episode in enumerate(batch):
            values = episode.embedding if episode.embedding is not None else computed[index]
            result.append(self._db_vector(values))
        return result

    # -- reads -------------------------------------------------------------------------------
    def episode_with(self, context: dict[str, Any]) -> int | None:
        """The id of an episode whose context contains ``context`` (the GIN index of each
        partition answers ``@>``), or ``None``: lets a writer that may repeat itself (an agent
        turn resumed after a crash) find what it already stored."""
        with self._transaction() as conn:
            row = conn.execute(
                sql.SQL("SELECT id FROM {} WHERE context @> %s ORDER BY id LIMIT 1").format(
                    sql.Identifier(TABLE)
                ),
                (Jsonb(context),),
            ).fetchone()
        return int(row[0]) if row else None

    def forget_threads(self, prefix: str) -> int:
        """Delete the episodes of every thread whose id starts with ``prefix`` (one transaction);
        the number deleted. A scenario that replays itself (the demo's second act) removes its
        previous run's turns this way, so they are not evidence for the next."""
        if not prefix:
            raise MemoryStoreError("an empty prefix would name every thread", field="prefix")
        with self._transaction() as conn:
            cursor = conn.execute(
                sql.SQL("DELETE FROM {} WHERE starts_with(context->>'thread_id', %s)").format(
                    sql.Identifier(TABLE)
                ),
                (prefix,),
            )
        return int(cursor.rowcount)

    def count(self) -> int:
        with self._transaction() as conn:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(TABLE)))
            value = row.fetchone()
        return int(value[0]) if value else 0

    def _check_filters(self, options: SearchOptions, limits: EpisodeLimits) -> None:
        for name in ("since", "until"):
            moment = options.get(name)
            if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
                raise InvalidEpisodeError("timestamp must carry a UTC offset", field=name)
        for name in ("min_valence", "max_valence", "min_arousal", "max_arousal"):
            bound = options.get(name)
            if bound is not None and not (
                isinstance(bound, int | float) and -1.0 <= float(bound) <= 1.0
            ):
                raise InvalidEpisodeError("must be a number in [-1, 1]", field=name)
        context = options.get("context")
        if context is not None:
            if not isinstance(context, dict):
                raise InvalidEpisodeError("must be a JSON object", field="context")
            found = problem_in(context, max_depth=limits.max_context_depth)
            if found is not None:
                where, reason = found
                raise InvalidEpisodeError(reason, field=f"context.{where}" if where else "context")

    def _query_vector(
        self,
        query_text: str | None,
        query_vector: Sequence[float] | None,
        mode: Mode,
        limits: EpisodeLimits,
    ) -> list[float]:
        if query_vector is not None:
            return validate_vector(query_vector, limits=limits, field="query_vector")
        if query_text is not None and query_text.strip():
            problem = text_problem(query_text)
            if problem:
                raise InvalidEpisodeError(problem, field="query_text")
            if len(query_text) > limits.max_chars:
                raise InvalidEpisodeError(
                    f"has {len(query_text)} characters, the limit is {limits.max_chars}",
                    field="query_text",
                )
            return [float(v) for v in self.embedder.embed([query_text])[0]]
        raise InvalidEpisodeError(f"{mode} search needs a query text or vector", field="query_text")

    def _prepare(
        self, query_text: str | None, query_vector: Sequence[float] | None, options: SearchOptions
    ) -> tuple[str, sql.Composed, dict[str, Any]]:
        mode = options.get("mode", "semantic")
        k = options.get("k", 10)
        semantic_weight = options.get("semantic_weight", 0.7)
        limits = self.limits
        if mode not in ("semantic", "affective", "hybrid"):
            raise InvalidEpisodeError(f"unknown mode {mode!r}", field="mode")
        if not isinstance(k, int) or not 1 <= k <= 1000:
            raise InvalidEpisodeError("k must be between 1 and 1000", field="k")
        if not 0.0 <= semantic_weight <= 1.0:
            raise InvalidEpisodeError("must be in [0, 1]", field="semantic_weight")
        self._check_filters(options, limits)
        params: dict[str, Any] = {"k": k}
        if mode in ("semantic", "hybrid"):
            params["q"] = self._db_vector(
                self._query_vector(query_text, query_vector, mode, limits)
            )
        if mode in ("affective", "hybrid"):
            affect = options.get("affect")
            if affect is None:
                raise InvalidEpisodeError(f"{mode} search needs an affect", field="affect")
            params["a"] = Vector(to_affect(affect).as_list())
        filters = search_sql.Filters(
            options.get("since"),
            options.get("until"),
            options.get("min_valence"),
            options.get("max_valence"),
            options.get("min_arousal"),
            options.get("max_arousal"),
            options.get("context"),
        )
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
        **options: Unpack[SearchOptions],
    ) -> list[SearchResult]:
        """Nearest episodes by meaning, affect or both, within the filters; closest first."""
        name, query, params = self._prepare(query_text, query_vector, options)
        with self._transaction() as conn:
            self._session_settings(conn, options.get("ef_search"))
            rows = self._timed(conn, name, query, params)
        return [
            SearchResult(
                id=row["id"],
                occurred_at=row["occurred_at"],
                content=row["content"],
                affect=Affect.model_validate(row["affect"].to_list()),
                # Rows stored before contexts were capped may be deeper than any renderer
                # (or pydantic's serialiser) can take: clip them here, once, for every caller.
                context=clip_depth(row["context"]),
                distance=float(row["distance"]),
                similarity=float(row["similarity"]),
            )
            for row in rows
        ]

    def explain(
        self,
        query_text: str | None = None,
        query_vector: Sequence[float] | None = None,
        **options: Unpack[SearchOptions],
    ) -> str:
        """``EXPLAIN (ANALYZE, BUFFERS)`` of the search these arguments would run."""
        _, query, params = self._prepare(query_text, query_vector, options)
        with self._transaction() as conn:
            self._session_settings(conn, options.get("ef_search"))
            lines = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + query, params)
            return "\n".join(str(line[0]) for line in lines)
