"""The appraisal model as an MLflow pyfunc ("models from code": MLflow stores this file with
the model and runs it to rebuild the model, so loading needs no pickle and none of the training
code's globals — only the installed ``emily`` package and the model's own artefact).

``mlflow.pyfunc.load_model("models:/emily-appraisal@champion").predict({"text": [...]})``
returns a frame with one ``valence`` in [-1, 1] per text. Callers that already hold the texts'
MiniLM embeddings (the agent loop does) call ``unwrap_python_model().appraise(texts, vectors)``
and skip the embedding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import numpy.typing as npt
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from emily.mlops.appraisal.model import KernelRidgeAppraiser, ModelError


class AppraisalModel(PythonModel):  # type: ignore[misc]
    """text → valence; the embedder is the project's (MiniLM on ONNX Runtime)."""

    def __init__(self) -> None:
        self.model: KernelRidgeAppraiser | None = None
        self._embedder: Any = None

    def load_context(self, context: Any) -> None:
        self.model = KernelRidgeAppraiser.load(Path(context.artifacts["appraisal"]))

    def _embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        if self._embedder is None:
            from emily.config import load_settings
            from emily.memory.embedding.factory import create_embedder

            self._embedder = create_embedder(load_settings())
        return np.asarray(self._embedder.embed(texts), dtype=np.float32)

    def appraise(
        self, texts: list[str], embeddings: npt.NDArray[np.floating] | None = None
    ) -> npt.NDArray[np.float64]:
        if self.model is None:
            raise ModelError("the model's context was not loaded")
        vectors = self._embed(texts) if embeddings is None else np.asarray(embeddings)
        return self.model.predict(vectors)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if "text" not in frame.columns:
            raise ModelError("the input needs a 'text' column", field="text")
        texts = [str(t) for t in frame["text"].tolist()]
        return pd.DataFrame({"valence": self.appraise(texts)})


mlflow.models.set_model(AppraisalModel())
