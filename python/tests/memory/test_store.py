from __future__ import annotations

import math
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from emily.config import Settings
from emily.locator import Endpoints
from emily.memory import maintenance
from emily.memory.models import Affect, Episode
from emily.memory.search_sql import AFFECT_DIAMETER
from emily.memory.store import MemoryStore
from tests.memory.conftest import NOW, make_episodes, unit_vectors

DIM = 384


@pytest.fixture(scope="module")
def corpus(store: MemoryStore) -> dict[str, Any]:
    """300 tagged episodes over the last 90 days, with their vectors for exact comparisons."""
    rng = np.random.default_rng(7)
    episodes = make_episodes(rng, 300, DIM, start=NOW - timedelta(days=90))
    for i, episode in enumerate(episodes):
        episode["occurred_at"] = NOW - timedelta(days=90) + timedelta(hours=7 * i)
        episode["context"]["parity"] = "even" if i % 2 == 0 else "odd"
    ids = store.add_many(episodes)
    return {
        "tag": episodes[0]["context"]["tag"],
        "episodes": {new_id: e for new_id, e in zip(ids, episodes, strict=True)},
    }


def _cosine_distance(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_add_returns_ids_in_order_and_count_grows(store: MemoryStore) -> None:
    episodes = make_episodes(np.random.default_rng(3), 4, DIM)
    before = store.count()
    ids = store.add_many(episodes)
    single = store.add(Episode.model_validate(make_episodes(np.random.default_rng(4), 1, DIM)[0]))
    assert ids == sorted(ids) and len(set(ids)) == 4 and single > ids[-1]
    assert store.count() == before + 5
    assert store.add_many([]) == []
    hits = store.search(query_vector=episodes[2]["embedding"], k=1)
    assert hits[0].id == ids[2]
    assert hits[0].content == episodes[2]["content"]
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-3)


def test_semantic_matches_exact_neighbours(store: MemoryStore, corpus: dict[str, Any]) -> None:
    query = unit_vectors(np.random.default_rng(11), 1, DIM)[0]
    results = store.search(query_vector=query, k=10, context={"tag": corpus["tag"]}, ef_search=200)
    exact = sorted(
        corpus["episodes"],
        key=lambda i: _cosine_distance(query, corpus["episodes"][i]["embedding"]),
    )[:10]
    assert [r.id for r in results] == exact
    for r in results:
        expected = _cosine_distance(query, corpus["episodes"][r.id]["embedding"])
        assert r.distance == pytest.approx(expected, abs=2e-3)
        assert r.similarity == pytest.approx(1 - r.distance)


def test_affective_matches_exact_neighbours(store: MemoryStore, corpus: dict[str, Any]) -> None:
    target = Affect(valence=0.5, arousal=-0.2, dominance=0.1)
    results = store.search(mode="affective", affect=target, k=8, context={"tag": corpus["tag"]})
    dist = {
        i: float(np.linalg.norm(np.subtract(e["affect"], target.as_list())))
        for i, e in corpus["episodes"].items()
    }
    assert [r.id for r in results] == sorted(dist, key=dist.__getitem__)[:8]
    for r in results:
        assert r.distance == pytest.approx(dist[r.id], abs=1e-5)
        assert r.similarity == pytest.approx(1 - dist[r.id] / (2 * math.sqrt(3)), abs=1e-5)


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.7, 1.0])
def test_hybrid_scores_are_the_documented_blend(
    store: MemoryStore, corpus: dict[str, Any], weight: float
) -> None:
    query = unit_vectors(np.random.default_rng(12), 1, DIM)[0]
    affect = [-0.4, 0.6, 0.0]
    results = store.search(
        query_vector=query,
        affect=affect,
        mode="hybrid",
        k=10,
        semantic_weight=weight,
        context={"tag": corpus["tag"]},
        ef_search=200,
    )

    def score(i: int) -> float:
        e = corpus["episodes"][i]
        cos_sim = 1 - _cosine_distance(query, e["embedding"])
        aff_sim = 1 - float(np.linalg.norm(np.subtract(e["affect"], affect))) / AFFECT_DIAMETER
        return weight * cos_sim + (1 - weight) * aff_sim

    assert len(results) == 10
    for r in results:
        assert r.similarity == pytest.approx(score(r.id), abs=2e-3)
        assert r.distance == pytest.approx(1 - r.similarity)
    sims = [r.similarity for r in results]
    assert sims == sorted(sims, reverse=True)
    best = sorted(corpus["episodes"], key=score, reverse=True)[:3]
    assert [r.id for r in results[:3]] == best


def test_context_and_time_filters(store: MemoryStore, corpus: dict[str, Any]) -> None:
    since, until = NOW - timedelta(days=60), NOW - timedelta(days=30)
    results = store.search(
        query_vector=unit_vectors(np.random.default_rng(13), 1, DIM)[0],
        k=20,
        since=since,
        until=until,
        context={"tag": corpus["tag"], "parity": "odd"},
    )
    assert len(results) == 20
    assert all(since <= r.occurred_at < until and r.context["parity"] == "odd" for r in results)


def test_filtered_search_returns_k_beyond_the_candidate_list(
    store: MemoryStore, endpoints: Endpoints
) -> None:
    """Only 12 of 1200 rows pass the valence filter, and they lie far from the query: a plain
    HNSW scan with ef_search=10 finds none of them; the iterative scan keeps going."""
    rng = np.random.default_rng(21)
    tag = uuid.uuid4().hex
    month = (NOW - timedelta(days=400)).replace(day=10)
    base = make_episodes(rng, 1200, DIM, tag=tag, start=month)
    query = base[0]["embedding"]
    for i, episode in enumerate(base):
        episode["occurred_at"] = month + timedelta(minutes=i)
        v = episode["affect"]
        episode["affect"] = [0.95 if i % 100 == 99 else min(v[0], 0.5), v[1], v[2]]
    store.add_many(base)
    # Fresh statistics: otherwise the planner guesses few rows in the window and sorts them all.
    maintenance.vacuum_analyze(store.settings)
    kwargs: dict[str, Any] = {
        "query_vector": query,
        "k": 10,
        "min_valence": 0.9,
        "since": month,
        "until": month + timedelta(days=2),
        "ef_search": 10,
    }
    plan = store.explain(**{k: v for k, v in kwargs.items() if k != "min_valence"})
    results = store.search(**kwargs)
    assert "embedding_hnsw" in plan, "the planner did not use the HNSW index"
    assert "Buffers" in plan
    wanted = sorted(
        (i for i in range(1200) if i % 100 == 99),
        key=lambda i: _cosine_distance(query, base[i]["embedding"]),
    )[:10]
    assert [r.content for r in results] == [base[i]["content"] for i in wanted]
    assert all(r.affect.valence >= 0.9 for r in results)
    # Without the iterative scan the same query finds fewer rows: the setting is what helps.
    with psycopg.connect(endpoints.postgres_dsn) as conn:
        conn.execute("SET hnsw.ef_search = 10")
        conn.execute("SET hnsw.iterative_scan = off")
        rows = conn.execute(
            "SELECT id FROM episodic_memories WHERE (affect::real[])[1] >= 0.9"
            " AND occurred_at >= %s AND occurred_at < %s"
            " ORDER BY embedding <=> %s::halfvec LIMIT 10",
            (month, month + timedelta(days=2), str(query)),
        ).fetchall()
    assert len(rows) < 10


def test_slow_queries_are_logged_without_values(migrated: Settings) -> None:
    fast_threshold = migrated.model_copy(
        update={"database": migrated.database.model_copy(update={"slow_query_ms": 0.0})}
    )
    with MemoryStore(fast_threshold) as store, capture_logs() as logs:
        store.search(mode="affective", affect=[0.1, 0.2, 0.3], k=3)
    slow = [entry for entry in logs if entry["event"] == "slow_query"]
    assert slow and slow[0]["sql"] == "search_affective" and slow[0]["params"] >= 2
    assert "0.1" not in str(slow[0])


def test_store_without_schema_or_stack_fails_clearly(tmp_path: Any) -> None:
    from emily.errors import StackNotRunningError
    from tests.conftest import make_settings

    with pytest.raises(StackNotRunningError):
        MemoryStore(make_settings(tmp_path)).count()


text_st = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=200,
).filter(lambda s: s.strip() != "")
json_leaf = st.none() | st.booleans() | st.integers(-(10**12), 10**12) | text_st
context_st = st.dictionaries(
    text_st, st.recursive(json_leaf, lambda c: st.lists(c, max_size=3), max_leaves=5), max_size=4
)
unit = st.floats(-1, 1, allow_nan=False)


@hsettings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=text_st, affect=st.tuples(unit, unit, unit), context=context_st)
def test_round_trip(
    store: MemoryStore, content: str, affect: tuple[float, float, float], context: dict[str, Any]
) -> None:
    tag = uuid.uuid4().hex
    vector = unit_vectors(np.random.default_rng(abs(hash(tag)) % 2**32), 1, DIM)[0]
    new_id = store.add(
        {
            "content": content,
            "occurred_at": NOW - timedelta(days=3),
            "affect": list(affect),
            "context": {**context, "_tag": tag},
            "embedding": vector.tolist(),
        }
    )
    [hit] = store.search(query_vector=vector, k=1, context={"_tag": tag})
    assert hit.id == new_id and hit.content == content
    assert hit.context == {**context, "_tag": tag}
    assert hit.affect.as_list() == pytest.approx(list(affect), abs=1e-6)
    assert hit.occurred_at == NOW - timedelta(days=3)


@hsettings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(1, 30),
    mode=st.sampled_from(["semantic", "affective", "hybrid"]),
    days=st.tuples(st.integers(0, 90), st.integers(0, 90)),
    valence=st.tuples(unit, unit),
    min_arousal=st.none() | unit,
    parity=st.none() | st.sampled_from(["even", "odd"]),
)
def test_results_ordered_and_filters_respected(
    store: MemoryStore,
    corpus: dict[str, Any],
    seed: int,
    k: int,
    mode: str,
    days: tuple[int, int],
    valence: tuple[float, float],
    min_arousal: float | None,
    parity: str | None,
) -> None:
    rng = np.random.default_rng(seed)
    since = NOW - timedelta(days=max(days))
    until = NOW - timedelta(days=min(days))
    context: dict[str, Any] = {"tag": corpus["tag"]}
    if parity:
        context["parity"] = parity
    results = store.search(
        query_vector=unit_vectors(rng, 1, DIM)[0],
        affect=rng.uniform(-1, 1, 3).tolist(),
        mode=mode,  # type: ignore[arg-type]
        k=k,
        since=since,
        until=until,
        min_valence=min(valence),
        max_valence=max(valence),
        min_arousal=min_arousal,
        context=context,
        ef_search=100,
    )
    distances = [r.distance for r in results]
    assert distances == sorted(distances)
    matching = 0
    for e in corpus["episodes"].values():
        v, a, _ = e["affect"]
        if (
            since <= e["occurred_at"] < until
            and min(valence) <= np.float32(v) <= max(valence)
            and (min_arousal is None or np.float32(a) >= min_arousal)
            and (parity is None or e["context"]["parity"] == parity)
        ):
            matching += 1
    for r in results:
        assert since <= r.occurred_at < until
        assert min(valence) - 1e-6 <= r.affect.valence <= max(valence) + 1e-6
        assert min_arousal is None or r.affect.arousal >= min_arousal - 1e-6
        assert r.context["tag"] == corpus["tag"]
        assert parity is None or r.context["parity"] == parity
    assert len(results) == min(k, matching)


def test_forget_threads_deletes_exactly_the_threads_with_the_prefix(store: MemoryStore) -> None:
    from emily.memory.errors import MemoryStoreError

    rng = np.random.default_rng(3)
    prefix = f"forget-{uuid.uuid4().hex[:6]}-"
    gone = make_episodes(rng, 4, DIM, thread_id=f"{prefix}a")
    kept = make_episodes(rng, 3, DIM, thread_id=f"x{prefix}b")  # the prefix, but not at the start
    store.add_many([*gone, *kept])
    before = store.count()
    assert store.forget_threads(prefix) == 4
    assert store.count() == before - 4
    assert store.episode_with({"thread_id": f"x{prefix}b"}) is not None
    assert store.forget_threads(prefix) == 0
    with pytest.raises(MemoryStoreError) as refused:
        store.forget_threads("")
    assert refused.value.field == "prefix"
    assert store.count() == before - 4
