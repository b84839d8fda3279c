"""``create_embedder``: the embedder ``settings.embedder`` describes, checked against the
database's vector dimension before the first text is embedded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from emily import locator
from emily.errors import ConfigError, StackNotRunningError
from emily.memory.embedding.base import Embedder
from emily.memory.embedding.graph import BertConfig
from emily.memory.embedding.onnx_minilm import (
    OnnxMiniLMEmbedder,
    check_model_dir,
    shipped_model_dir,
)
from emily.memory.embedding.openai_compat import OpenAICompatibleEmbedder

if TYPE_CHECKING:
    from emily.config import Settings

DIM_FIELD = "EMILY_DATABASE__EMBEDDING_DIM"
URL_FIELD = "EMILY_EMBEDDER__BASE_URL"


def create_embedder(settings: Settings) -> Embedder:
    """The embedder ``settings.embedder`` describes, checked against the database dimension."""
    if settings.embedder.kind == "openai":
        return _openai_embedder(settings)
    return _local_embedder(settings)


def endpoint(settings: Settings) -> tuple[str, str | None]:
    """Base URL and key of the ``/v1/embeddings`` server: the configured ones, else the local
    stack's llama-server (started with ``--embeddings``) and the key it was started with."""
    config = settings.embedder
    if config.base_url:
        return config.base_url, config.api_key.get_secret_value() if config.api_key else None
    try:
        url = locator.llm_base_url(settings)
    except StackNotRunningError as exc:
        raise ConfigError(
            "the openai embedder needs a base URL, and the local llm service is not running",
            field=URL_FIELD,
            hint="set EMILY_EMBEDDER__BASE_URL, or start the local llama-server with "
            'EMILY_INFERENCE__SERVER__EXTRA_ARGS=\'["--embeddings","--pooling","mean"]\'',
        ) from exc
    key = config.api_key.get_secret_value() if config.api_key else locator.llm_api_key(settings)
    return url, key


def _openai_embedder(settings: Settings) -> OpenAICompatibleEmbedder:
    config = settings.embedder
    base_url, api_key = endpoint(settings)
    return OpenAICompatibleEmbedder(
        base_url,
        model=config.model,
        api_key=api_key,
        dim=settings.database.embedding_dim,
        batch_size=config.batch_size,
    )


def _local_embedder(settings: Settings) -> OnnxMiniLMEmbedder:
    config = settings.embedder
    expected = settings.database.embedding_dim
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
