"""The pgvector client against the real server: failures surface as typed errors."""

from __future__ import annotations

import numpy as np
import pytest

from emily.config import Settings
from emily.errors import StackError
from emily.locator import postgres_admin_dsn
from emily.memory.bench import pg
from emily.memory.bench.harness import measure
from emily.stack.manager import Stack


def test_prepare_and_search_failures(stack: Stack, settings: Settings) -> None:
    vectors = np.random.default_rng(3).standard_normal((50, 8)).astype(np.float32)
    with pg.scratch_database(postgres_admin_dsn(settings), "harness") as dsn:
        pg.load(dsn, vectors, "vector")
        layout = pg.Layout("vector", "l2", cosine_as_ip=False)
        oid = pg.type_oid(dsn, "vector")
        good = pg.render(dsn, pg.query_sql(layout, 8, 5, None))
        found = measure(
            lambda: pg.PgClient(dsn, good, oid, pg.encode(vectors, "vector"), {}), 50, 2, 5
        )
        assert (found.found[:, 0] == np.arange(50)).all()  # each vector is its own nearest
        assert found.qps > 0
        with pytest.raises(StackError, match="prepare failed"):
            pg.PgClient(dsn, b"SELECT id FROM nowhere", oid, [], {})
        wrong_dim = pg.encode(np.ones((4, 3), dtype=np.float32), "vector")
        with pytest.raises(StackError, match="search failed"):
            measure(lambda: pg.PgClient(dsn, good, oid, wrong_dim, {}), 4, 1, 5)
        with pytest.raises(StackError, match="explain failed"):
            pg.explain(dsn, pg.query_sql(layout, 8, 5, None), wrong_dim[0], oid, {})
