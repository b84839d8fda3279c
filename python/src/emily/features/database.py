"""The features schema in PostgreSQL: the role Feast uses, the views its sources read, and our own
bookkeeping tables. Created idempotently when the repository is applied (``emily up``).

The offline store *is* the episodes table: every view here is a function of
``public.episodic_memories``, so what the agent pushes online after storing an episode and what
materialization computes from the offline store are the same numbers (``emily.features.rows``
implements the same windows in Python; a test holds the two together).

* ``episodes_v1`` flattens an episode: thread, stimulus kind, turn, layer, degraded, confidence and
  V/A/D out of the jsonb context and the ``vector(3)``. Malformed context values become NULL (or
  -1 for the turn) instead of aborting a materialization. The extraction sits behind an
  ``OFFSET 0`` fence: without it the planner inlines the jsonb and vector casts into every
  window frame and a materialization of 100k rows is several times slower.
* ``thread_turns_v1`` (push source ``thread_turn_push_v1``): windows over the thread's last 20
  episodes, ordered by ``(occurred_at, id)``.
* ``stimulus_episodes_v1`` (push source ``stimulus_push_v1``): each episode by stimulus kind.
* ``stimulus_habituation_v1``: exposures of each kind in the hour up to each episode.

Every source view keeps one row per entity and event time (Feast's ``created_at`` tie-break does
not separate episodes stored in one transaction, which share it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from emily.errors import ConfigError, StackError
from emily.features.schema import HABITUATION_SCALE, WINDOW
from emily.locator import postgres_admin_dsn
from emily.memory.connect import connect
from emily.stack.features import DB_PASSWORD_SECRET, features_dsn

if TYPE_CHECKING:
    from emily.config import Settings

EPISODES_TABLE = "public.episodic_memories"
LOCK_KEY = 0x66656174  # "feat": serialises concurrent applies

_EPISODES = """
SELECT * FROM (
    SELECT
        e.id,
        e.occurred_at,
        e.created_at,
        e.context->>'thread_id' AS thread_id,
        e.context->>'source' AS stimulus_kind,
        CASE WHEN jsonb_typeof(e.context->'turn') = 'number'
                  AND (e.context->>'turn') ~ '^-?[0-9]{{1,18}}$'
             THEN (e.context->>'turn')::bigint ELSE -1 END AS turn,
        e.context->>'layer' AS layer,
        coalesce(e.context->'degraded' = 'true'::jsonb, false) AS degraded,
        CASE WHEN jsonb_typeof(e.context->'confidence') = 'number'
                  AND (e.context->'confidence')::numeric BETWEEN 0 AND 1
             THEN (e.context->>'confidence')::float8 END AS confidence,
        ((e.affect::real[])[1])::float8 AS valence,
        ((e.affect::real[])[2])::float8 AS arousal,
        ((e.affect::real[])[3])::float8 AS dominance
    FROM public.episodic_memories e
    OFFSET 0
) AS fenced
"""

# Each source view keeps one row per (entity, event time): two episodes of a thread at the same
# instant would otherwise both survive a point-in-time join (and multiply across views); the one
# kept is the last (highest id), whose window holds both.
_ONE_PER_INSTANT = "row_number() OVER (PARTITION BY {key}, occurred_at ORDER BY id DESC) AS nth"

_THREAD_TURNS = """
SELECT thread_id, occurred_at, created_at, episode_id, valence_mean_20, arousal_mean_20,
       dominance_mean_20, valence_var_20, arousal_var_20, dominance_var_20, degraded_rate_20,
       episodes_20, turn, appraisal_confidence, appraisal_confidence_mean_20, cognition_rate_20
FROM (
    SELECT
        thread_id,
        occurred_at,
        created_at,
        id AS episode_id,
        avg(valence) OVER w AS valence_mean_20,
        avg(arousal) OVER w AS arousal_mean_20,
        avg(dominance) OVER w AS dominance_mean_20,
        var_pop(valence) OVER w AS valence_var_20,
        var_pop(arousal) OVER w AS arousal_var_20,
        var_pop(dominance) OVER w AS dominance_var_20,
        avg(degraded::int::float8) OVER w AS degraded_rate_20,
        count(*) OVER w AS episodes_20,
        turn,
        confidence AS appraisal_confidence,
        avg(confidence) OVER w AS appraisal_confidence_mean_20,
        avg((layer IS NOT DISTINCT FROM 'cognition')::int::float8) OVER w AS cognition_rate_20,
        {one_per_instant}
    FROM {schema}.episodes_v1
    WHERE thread_id IS NOT NULL
    WINDOW w AS (PARTITION BY thread_id ORDER BY occurred_at, id
                 ROWS BETWEEN {preceding} PRECEDING AND CURRENT ROW)
) AS turns
WHERE nth = 1
"""

_STIMULUS_EPISODES = """
SELECT stimulus_kind, occurred_at, created_at, episode_id, last_seen_epoch, last_valence,
       last_arousal, last_dominance
FROM (
    SELECT
        stimulus_kind,
        occurred_at,
        created_at,
        id AS episode_id,
        extract(epoch FROM occurred_at)::float8 AS last_seen_epoch,
        valence AS last_valence,
        arousal AS last_arousal,
        dominance AS last_dominance,
        {one_per_instant}
    FROM {schema}.episodes_v1
    WHERE stimulus_kind IS NOT NULL
) AS episodes
WHERE nth = 1
"""

_HABITUATION = """
SELECT stimulus_kind, occurred_at, created_at, exposures_1h, arousal_mean_1h, habituation
FROM (
    SELECT
        stimulus_kind,
        occurred_at,
        created_at,
        count(*) OVER h AS exposures_1h,
        avg(arousal) OVER h AS arousal_mean_1h,
        1.0::float8 - exp(-(count(*) OVER h)::float8 / {scale}) AS habituation,
        {one_per_instant}
    FROM {schema}.episodes_v1
    WHERE stimulus_kind IS NOT NULL
    WINDOW h AS (PARTITION BY stimulus_kind ORDER BY occurred_at
                 RANGE BETWEEN INTERVAL '1 hour' PRECEDING AND CURRENT ROW)
) AS exposures
WHERE nth = 1
"""

_TABLES = (
    # One row per (view, feature): the training baseline the monitor compares against.
    """
    CREATE TABLE IF NOT EXISTS {schema}.baselines (
        view text NOT NULL,
        feature text NOT NULL,
        label text NOT NULL,
        captured_at timestamptz NOT NULL DEFAULT now(),
        sample float8[] NOT NULL,
        PRIMARY KEY (view, feature)
    )
    """,
    # What was applied last (fingerprint of the definitions), so `emily up` skips the
    # (slow: Feast import) apply when nothing changed.
    """
    CREATE TABLE IF NOT EXISTS {schema}.repo_state (
        project text PRIMARY KEY,
        fingerprint text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
    )
    """,
)


def view_sql(schema: str) -> dict[str, str]:
    """``view name → SELECT`` of every source view, in creation order."""
    ident = sql.Identifier(schema).as_string(None)
    thread = _ONE_PER_INSTANT.format(key="thread_id")
    kind = _ONE_PER_INSTANT.format(key="stimulus_kind")
    return {
        "episodes_v1": _EPISODES.format(),
        "thread_turns_v1": _THREAD_TURNS.format(
            schema=ident, preceding=WINDOW - 1, one_per_instant=thread
        ),
        "stimulus_episodes_v1": _STIMULUS_EPISODES.format(schema=ident, one_per_instant=kind),
        "stimulus_habituation_v1": _HABITUATION.format(
            schema=ident, scale=f"{HABITUATION_SCALE:.1f}", one_per_instant=kind
        ),
    }


def _ensure_role(settings: Settings, conn: psycopg.Connection[Any]) -> None:
    config = settings.features
    if settings.database.dsn is None and config.offline_dsn is None:
        from emily.stack.postgres import ensure_login_role
        from emily.statefile import StateDir

        password = StateDir(settings.state_dir).secret(DB_PASSWORD_SECRET)
        ensure_login_role(conn, config.db_role, password)
        return
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (config.db_role,))
    if exists.fetchone() is None:
        raise ConfigError(
            f"role {config.db_role} does not exist",
            field="EMILY_FEATURES__DB_ROLE",
            hint="with an external database the deployment creates the role",
        )


def ensure_privileges(settings: Settings) -> None:
    """Role, schema and grants, as the owner (admin DSN): the role may read the episodes and
    owns its schema, nothing else."""
    config = settings.features
    role, schema = sql.Identifier(config.db_role), sql.Identifier(config.db_schema)
    with connect(postgres_admin_dsn(settings), autocommit=True) as conn:
        if conn.execute("SELECT to_regclass(%s)", (EPISODES_TABLE,)).fetchone() == (None,):
            raise StackError(
                f"{EPISODES_TABLE} does not exist",
                hint="the memory migrations run first (`emily up`)",
            )
        _ensure_role(settings, conn)
        dbname = sql.Identifier(conn.info.dbname)
        for statement in (
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(dbname, role),
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(schema, role),
            sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(schema, role),
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role),
            sql.SQL("GRANT SELECT ON {} TO {}").format(sql.SQL(EPISODES_TABLE), role),
        ):
            conn.execute(statement)


def ensure_views(settings: Settings) -> None:
    """Source views and bookkeeping tables, as the feature role (it owns them). Views are
    dropped and recreated in one transaction: ``CREATE OR REPLACE`` cannot change columns."""
    schema = settings.features.db_schema
    ident = sql.Identifier(schema)
    with connect(features_dsn(settings)) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        views = view_sql(schema)
        for name in reversed(views):
            conn.execute(
                sql.SQL("DROP VIEW IF EXISTS {}.{} CASCADE").format(ident, sql.Identifier(name))
            )
        for name, body in views.items():
            conn.execute(
                sql.SQL("CREATE VIEW {}.{} AS {}").format(
                    ident,
                    sql.Identifier(name),
                    sql.SQL(body),  # type: ignore[arg-type]
                )
            )
        for table in _TABLES:
            conn.execute(sql.SQL(table.format(schema=ident.as_string(None))))  # type: ignore[arg-type]


def stored_fingerprint(settings: Settings) -> str | None:
    """The fingerprint of the last apply, or ``None`` (never applied, or the schema is gone)."""
    config = settings.features
    try:
        with connect(features_dsn(settings), autocommit=True) as conn:
            table = conn.execute(
                "SELECT to_regclass(%s)", (f"{config.db_schema}.repo_state",)
            ).fetchone()
            if table is None or table[0] is None:
                return None
            row = conn.execute(
                sql.SQL("SELECT fingerprint FROM {}.repo_state WHERE project = %s").format(
                    sql.Identifier(config.db_schema)
                ),
                (config.project,),
            ).fetchone()
    except StackError:
        return None  # the role cannot log in yet: never applied here
    return None if row is None else str(row[0])


def record_fingerprint(settings: Settings, fingerprint: str) -> None:
    config = settings.features
    with connect(features_dsn(settings), autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.repo_state (project, fingerprint) VALUES (%s, %s) "
                "ON CONFLICT (project) DO UPDATE SET fingerprint = excluded.fingerprint, "
                "applied_at = now()"
            ).format(sql.Identifier(config.db_schema)),
            (config.project, fingerprint),
        )
