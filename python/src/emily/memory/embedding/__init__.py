"""Text embedders: a protocol, the offline local default (all-MiniLM-L6-v2 on ONNX Runtime) and
an OpenAI-compatible ``/v1/embeddings`` client for production."""

from __future__ import annotations

from emily.config import Settings
from emily.errors import ConfigError
from emily.memory.embedding.base import Embedder, EmbedderError
from emily.memory.embedding.graph import BertConfig
from emily.memory.embedding.onnx_minilm import (
    OnnxMiniLMEmbedder,
    check_model_dir,
    shipped_model_dir,
)
from emily.memory.embedding.openai_compat import OpenAICompatibleEmbedder

__all__ = [
    "Embedder",
    "EmbedderError",
    "OnnxMiniLMEmbedder",
    "OpenAICompatibleEmbedder",
    "create_embedder",
]

DIM_FIELD = "EMILY_DATABASE__EMBEDDING_DIM"


def create_embedder(settings: Settings) -> Embedder:
    """The embedder ``settings.embedder`` describes, checked against the database dimension."""
    config = settings.embedder
    expected = settings.database.embedding_dim
    if config.kind == "openai":
        if not config.base_url:
            raise ConfigError(
                "the openai embedder needs a base URL", field="EMILY_EMBEDDER__BASE_URL"
            )
        return OpenAICompatibleEmbedder(
            config.base_url,
            model=config.model,
            api_key=config.api_key.get_secret_value() if config.api_key else None,
            dim=expected,
            batch_size=config.batch_size,
        )
    model_dir = check_model_dir(config.model_dir or shipped_model_dir())
    # Checked before the (slow, first-run) graph build so a misconfiguration fails at once.
    model_dim = BertConfig.from_model_dir(model_dir).hidden_size
    if model_dim != expected:
        raise ConfigError(
            f"the local model produces {model_dim}-d embeddings, but the database is "
            f"configured for {expected}",
            field=DIM_FIELD,
            hint=f"set {DIM_FIELD}={model_dim}",
        )
    return OnnxMiniLMEmbedder(
        model_dir,
        settings.cache_dir,
        batch_size=config.batch_size,
        threads=config.threads,
        name=config.model,
    )
