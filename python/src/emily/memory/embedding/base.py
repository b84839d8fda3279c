"""The embedder contract shared by every implementation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from emily.errors import EmilyError


class EmbedderError(EmilyError):
    """Text could not be embedded: model files missing, endpoint failing, bad response."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    # Read-only properties, so an implementation may compute them lazily (an API's dimension).
    @property
    def dim(self) -> int:
        """Length of every embedding."""
        ...

    @property
    def name(self) -> str:
        """Model name, recorded with stored embeddings."""
        ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Return an ``(len(texts), dim)`` float32 array whose rows have unit L2 norm."""
        ...


def check_texts(texts: Sequence[str]) -> list[str]:
    """Reject non-string items early, naming the row, so a bad ingest line is easy to find."""
    if isinstance(texts, str):
        raise EmbedderError("expected a sequence of texts, got a single string", field="texts")
    checked: list[str] = []
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise EmbedderError(
                f"text must be a string, got {type(text).__name__}", field="texts", row=row
            )
        checked.append(text)
    return checked


def l2_normalise(vectors: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """Unit-norm rows; the epsilon matches torch's ``F.normalize`` so zero rows stay zero."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    normalised: npt.NDArray[np.float32] = (array / np.maximum(norms, np.float32(1e-12))).astype(
        np.float32, copy=False
    )
    return normalised
