"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, vLLM, TEI,
llama-server, Ollama, ...), for production deployments that serve the model elsewhere."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import openai

from emily.memory.embedding.base import EmbedderError, check_texts, l2_normalise

DIM_FIELD = "EMILY_DATABASE__EMBEDDING_DIM"


class OpenAICompatibleEmbedder:
    """Calls ``POST {base_url}/embeddings`` in batches; rows are re-normalised because not every
    compatible server returns unit vectors."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        dim: int | None = None,
        batch_size: int = 64,
        timeout_s: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        self.name: str = model
        self.batch_size = batch_size
        self._dim = dim
        # The SDK insists on a key; self-hosted servers usually ignore it.
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "unused",
            timeout=timeout_s,
            max_retries=max_retries,
        )
        self.base_url = base_url

    @property
    def dim(self) -> int:
        """The configured dimension, else the one the server returns for a probe text."""
        if self._dim is None:
            self._dim = int(self._request(["dimension probe"]).shape[1])
        return self._dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        items = check_texts(texts)
        if not items:
            return np.empty((0, self.dim), dtype=np.float32)
        parts = [
            self._request(items[start : start + self.batch_size], offset=start)
            for start in range(0, len(items), self.batch_size)
        ]
        return np.concatenate(parts, axis=0)

    def _request(self, texts: list[str], offset: int = 0) -> npt.NDArray[np.float32]:
        try:
            response = self._client.embeddings.create(
                model=self.name, input=texts, encoding_format="float"
            )
        except openai.APIStatusError as exc:
            raise EmbedderError(
                f"{self.base_url} answered HTTP {exc.status_code}: {_short(exc.message)}",
                field="EMILY_EMBEDDER__BASE_URL",
            ) from exc
        except openai.APIError as exc:  # connection refused, timeout, undecodable body
            raise EmbedderError(
                f"embedding request to {self.base_url} failed: {_short(str(exc))}",
                field="EMILY_EMBEDDER__BASE_URL",
            ) from exc
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(texts):
            raise EmbedderError(
                f"{self.base_url} returned {len(data)} embeddings for {len(texts)} texts",
                field="EMILY_EMBEDDER__BASE_URL",
            )
        try:
            vectors = np.asarray([item.embedding for item in data], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise EmbedderError(
                f"{self.base_url} returned embeddings of different lengths or non-numbers",
                field="EMILY_EMBEDDER__BASE_URL",
            ) from exc
        if vectors.ndim != 2:
            raise EmbedderError(
                f"{self.base_url} returned embeddings of an unexpected shape {vectors.shape}",
                field="EMILY_EMBEDDER__BASE_URL",
            )
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise EmbedderError(
                f"{self.name} at {self.base_url} returns {vectors.shape[1]}-d vectors, "
                f"but the database is configured for {self._dim}",
                field=DIM_FIELD,
                hint=f"set {DIM_FIELD}={vectors.shape[1]} or use another model",
            )
        bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
        if bad.size:
            raise EmbedderError(
                f"{self.base_url} returned a non-finite embedding",
                field="embedding",
                row=offset + int(bad[0]),
            )
        return l2_normalise(vectors)

    def __repr__(self) -> str:
        return f"OpenAICompatibleEmbedder(name={self.name!r}, base_url={self.base_url!r})"


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
