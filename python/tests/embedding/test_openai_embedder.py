"""The OpenAI-compatible client against a fault-injection server started here.

The server is a small FastAPI app serving ``/v1/embeddings`` with our ONNX embedder, run by
uvicorn in a thread on a free port. A few model names make it misbehave the way broken or
mismatched servers do (and it answers out of order, as the spec allows), so the client's
error paths run against real HTTP responses that no real server produces on demand. The
client against a real server, llama-server with ``--embeddings``, is
``test_llama_server_embedder.py``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI, Header, HTTPException, Response
from pydantic import BaseModel

from emily.config import Settings, load_settings
from emily.errors import ConfigError
from emily.memory.embedding.base import Embedder, EmbedderError
from emily.memory.embedding.factory import create_embedder
from emily.memory.embedding.onnx_minilm import OnnxMiniLMEmbedder
from emily.memory.embedding.openai_compat import OpenAICompatibleEmbedder

KEY = "sk-test"


class EmbeddingRequest(BaseModel):
    model: str
    input: list[str] | str
    encoding_format: str = "float"


def make_app(embedder: OnnxMiniLMEmbedder) -> FastAPI:
    app = FastAPI()
    app.state.requests = []
    app.state.auth = []

    @app.post("/v1/embeddings")
    def embeddings(
        request: EmbeddingRequest, authorization: str | None = Header(default=None)
    ) -> Response:
        texts = [request.input] if isinstance(request.input, str) else request.input
        app.state.requests.append(len(texts))
        app.state.auth.append(authorization)
        if request.model == "keyed" and authorization != f"Bearer {KEY}":
            raise HTTPException(status_code=401, detail="Invalid API Key")
        if request.model == "broken":
            raise HTTPException(status_code=503, detail="model is loading")
        vectors = embedder.embed(texts).astype(np.float64)
        if request.model == "unnormalised":
            vectors = vectors * 3.0
        if request.model == "wide":
            vectors = np.hstack([vectors, vectors])
        if request.model == "short":
            vectors = vectors[:-1]
        rows: list[list[float]] = vectors.tolist()
        if request.model == "nan":
            rows[-1][0] = float("nan")
        if request.model == "ragged":
            rows[0] = rows[0][:10]
        data = [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)]
        # Answer in reverse order: the spec only promises the `index` field, not the order.
        body = {
            "object": "list",
            "data": data[::-1],
            "model": request.model,
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }
        # json.dumps, not JSONResponse: the "nan" case needs a literal NaN on the wire.
        return Response(json.dumps(body), media_type="application/json")

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(onnx_embedder: OnnxMiniLMEmbedder) -> Iterator[tuple[str, FastAPI]]:
    app = make_app(onnx_embedder)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    uv_server = uvicorn.Server(config)
    thread = threading.Thread(target=uv_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv_server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1", app
    finally:
        uv_server.should_exit = True
        thread.join(timeout=10)


def openai_settings(base: Settings, base_url: str | None, **embedder: object) -> Settings:
    return load_settings(
        state_dir=base.state_dir,
        cache_dir=base.cache_dir,
        embedder={"kind": "openai", "base_url": base_url, "batch_size": 4, **embedder},
    )


def test_batches_and_reorders_against_fault_injection_server(
    server: tuple[str, FastAPI], embedder_settings: Settings, onnx_embedder: OnnxMiniLMEmbedder
) -> None:
    base_url, app = server
    remote = create_embedder(openai_settings(embedder_settings, base_url, api_key=KEY))
    assert isinstance(remote, OpenAICompatibleEmbedder)
    assert isinstance(remote, Embedder)
    assert remote.dim == 384
    assert remote.name == "all-MiniLM-L6-v2"
    assert base_url in repr(remote) and KEY not in repr(remote)
    texts = [f"memory number {i} about the garden" for i in range(10)]
    app.state.requests.clear()
    app.state.auth.clear()
    vectors = remote.embed(texts)
    assert app.state.requests == [4, 4, 2]  # batch_size 4
    assert app.state.auth == [f"Bearer {KEY}"] * 3  # EMILY_EMBEDDER__API_KEY is sent
    assert vectors.dtype == np.float32
    # The server answers each batch in reverse order: rows must come back in input order.
    assert np.abs(vectors - onnx_embedder.embed(texts)).max() <= 1e-6
    assert remote.embed([]).shape == (0, 384)


def test_refused_key_is_typed(server: tuple[str, FastAPI], embedder_settings: Settings) -> None:
    wrong = create_embedder(
        openai_settings(embedder_settings, server[0], api_key="wrong", model="keyed")
    )
    with pytest.raises(EmbedderError, match="HTTP 401") as info:
        wrong.embed(["hello"])
    assert info.value.field == "EMILY_EMBEDDER__BASE_URL"
    assert "wrong" not in str(info.value)
    keyed = create_embedder(
        openai_settings(embedder_settings, server[0], api_key=KEY, model="keyed")
    )
    assert keyed.embed(["hello"]).shape == (1, 384)


def test_dimension_discovered_from_server(server: tuple[str, FastAPI]) -> None:
    remote = OpenAICompatibleEmbedder(server[0], model="all-MiniLM-L6-v2")
    assert remote.dim == 384
    assert remote.embed([]).shape == (0, 384)


def test_rows_are_renormalised(server: tuple[str, FastAPI]) -> None:
    remote = OpenAICompatibleEmbedder(server[0], model="unnormalised", dim=384)
    vectors = remote.embed(["scaled by three on the server"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_http_error_is_typed(server: tuple[str, FastAPI]) -> None:
    remote = OpenAICompatibleEmbedder(server[0], model="broken", dim=384, max_retries=0)
    with pytest.raises(EmbedderError, match="HTTP 503") as info:
        remote.embed(["hello"])
    assert info.value.field == "EMILY_EMBEDDER__BASE_URL"


def test_dimension_mismatch_names_setting(server: tuple[str, FastAPI]) -> None:
    remote = OpenAICompatibleEmbedder(server[0], model="wide", dim=384)
    with pytest.raises(EmbedderError, match="768-d") as info:
        remote.embed(["hello"])
    assert info.value.field == "EMILY_DATABASE__EMBEDDING_DIM"


def test_wrong_count_is_rejected(server: tuple[str, FastAPI]) -> None:
    remote = OpenAICompatibleEmbedder(server[0], model="short", dim=384)
    with pytest.raises(EmbedderError, match="returned 1 embeddings for 2 texts"):
        remote.embed(["one", "two"])


def test_ragged_rows_are_rejected(server: tuple[str, FastAPI]) -> None:
    remote = OpenAICompatibleEmbedder(server[0], model="ragged", dim=384)
    with pytest.raises(EmbedderError, match="different lengths"):
        remote.embed(["one", "two"])


def test_non_finite_names_row(server: tuple[str, FastAPI]) -> None:
    remote = OpenAICompatibleEmbedder(server[0], model="nan", dim=384, batch_size=2)
    with pytest.raises(EmbedderError, match="non-finite") as info:
        remote.embed(["a", "b", "c", "d", "e"])
    assert info.value.row == 1  # last row of the first batch


def test_connection_refused_is_typed() -> None:
    remote = OpenAICompatibleEmbedder(
        f"http://127.0.0.1:{free_port()}/v1", model="m", dim=384, max_retries=0, timeout_s=5
    )
    with pytest.raises(EmbedderError, match="failed") as info:
        remote.embed(["hello"])
    assert info.value.field == "EMILY_EMBEDDER__BASE_URL"


def test_missing_base_url_is_config_error(embedder_settings: Settings) -> None:
    with pytest.raises(ConfigError) as info:
        create_embedder(openai_settings(embedder_settings, None))
    assert info.value.field == "EMILY_EMBEDDER__BASE_URL"
