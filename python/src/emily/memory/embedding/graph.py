"""Build an ONNX graph of a BERT sentence encoder directly from its safetensors weights.

Exporting through torch would pull several GB of wheels into the environment for a one-off
conversion; the encoder is small and regular enough to write down with ``onnx.helper``. The graph
ends in mean pooling over the attention mask and L2 normalisation, so one ``run`` call yields
sentence embeddings exactly as sentence-transformers computes them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from emily.memory.embedding.base import EmbedderError

OPSET = 17
# Bumped whenever the graph changes, so a cached graph from an older builder is never reused.
GRAPH_VERSION = 1
INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
OUTPUT = "embeddings"


@dataclass(frozen=True)
class BertConfig:
    """The parts of a sentence-transformers BERT model directory that shape the graph."""

    hidden_size: int
    num_heads: int
    num_layers: int
    intermediate_size: int
    layer_norm_eps: float
    max_positions: int
    max_seq_length: int

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> BertConfig:
        config = _read_json(model_dir / "config.json")
        try:
            if config.get("model_type", "bert") != "bert" or config.get("hidden_act") != "gelu":
                raise EmbedderError(
                    f"{model_dir} is not a BERT model with GELU activations",
                    field="EMILY_EMBEDDER__MODEL_DIR",
                )
            hidden = int(config["hidden_size"])
            heads = int(config["num_attention_heads"])
            if hidden % heads:
                raise EmbedderError(
                    f"hidden_size {hidden} is not divisible by {heads} heads",
                    field="EMILY_EMBEDDER__MODEL_DIR",
                )
            positions = int(config["max_position_embeddings"])
            st_config = model_dir / "sentence_bert_config.json"
            max_seq = (
                int(_read_json(st_config).get("max_seq_length", positions))
                if st_config.is_file()
                else positions
            )
            pooling = model_dir / "1_Pooling" / "config.json"
            if pooling.is_file() and not _read_json(pooling).get("pooling_mode_mean_tokens", True):
                raise EmbedderError(
                    f"{model_dir} uses a pooling mode other than mean pooling",
                    field="EMILY_EMBEDDER__MODEL_DIR",
                )
            return cls(
                hidden_size=hidden,
                num_heads=heads,
                num_layers=int(config["num_hidden_layers"]),
                intermediate_size=int(config["intermediate_size"]),
                layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
                max_positions=positions,
                max_seq_length=min(max_seq, positions),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbedderError(
                f"{model_dir / 'config.json'} lacks a usable BERT setting: {exc}",
                field="EMILY_EMBEDDER__MODEL_DIR",
            ) from exc


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EmbedderError(
            f"cannot read {path}: {exc}", field="EMILY_EMBEDDER__MODEL_DIR"
        ) from exc
    if not isinstance(data, dict):
        raise EmbedderError(f"{path} is not a JSON object", field="EMILY_EMBEDDER__MODEL_DIR")
    return data


class _GraphBuilder:
    """Accumulates nodes and initializers; every helper returns the name of its output."""

    def __init__(self, weights: dict[str, npt.NDArray[Any]]) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counter = 0

    def fresh(self, stem: str) -> str:
        self._counter += 1
        return f"{stem}_{self._counter}"

    def const(self, name: str, value: npt.ArrayLike, dtype: Any = np.float32) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def weight(self, key: str, *, transpose: bool = False) -> str:
        try:
            array = self.weights[key]
        except KeyError as exc:
            raise EmbedderError(
                f"weight {key!r} is missing from model.safetensors",
                field="EMILY_EMBEDDER__MODEL_DIR",
            ) from exc
        array = np.asarray(array, dtype=np.float32)
        # Linear layers store (out, in); MatMul wants (in, out), so transpose once at build time.
        return self.const(key, np.ascontiguousarray(array.T) if transpose else array)

    def op(self, op_type: str, inputs: list[str], stem: str, **attrs: Any) -> str:
        out = self.fresh(stem)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x: str, prefix: str) -> str:
        product = self.op("MatMul", [x, self.weight(f"{prefix}.weight", transpose=True)], "matmul")
        return self.op("Add", [product, self.weight(f"{prefix}.bias")], "linear")

    def layer_norm(self, x: str, prefix: str, eps: float) -> str:
        return self.op(
            "LayerNormalization",
            [x, self.weight(f"{prefix}.weight"), self.weight(f"{prefix}.bias")],
            "layernorm",
            axis=-1,
            epsilon=eps,
        )

    def gelu(self, x: str) -> str:
        # The exact (erf) GELU that BERT's "gelu" means; ORT fuses this pattern into one kernel.
        scaled = self.op("Mul", [x, "c_inv_sqrt2"], "gelu_scale")
        erf = self.op("Erf", [scaled], "gelu_erf")
        shifted = self.op("Add", [erf, "c_one"], "gelu_shift")
        half = self.op("Mul", [x, "c_half"], "gelu_half")
        return self.op("Mul", [half, shifted], "gelu")


def _attention(g: _GraphBuilder, x: str, mask_bias: str, prefix: str, cfg: BertConfig) -> str:
    head_dim = cfg.hidden_size // cfg.num_heads

    def heads(name: str, perm: list[int]) -> str:
        projected = g.linear(x, f"{prefix}.attention.self.{name}")
        split = g.op("Reshape", [projected, "c_heads_shape"], f"{name}_split")
        return g.op("Transpose", [split], f"{name}_heads", perm=perm)

    query = heads("query", [0, 2, 1, 3])  # (B, H, S, D)
    key = heads("key", [0, 2, 3, 1])  # (B, H, D, S)
    value = heads("value", [0, 2, 1, 3])  # (B, H, S, D)
    scores = g.op("MatMul", [query, key], "scores")
    scaled = g.op("Mul", [scores, g.const(g.fresh("c_scale"), 1.0 / math.sqrt(head_dim))], "scaled")
    masked = g.op("Add", [scaled, mask_bias], "masked")
    probs = g.op("Softmax", [masked], "probs", axis=-1)
    context = g.op("MatMul", [probs, value], "context")
    merged = g.op("Transpose", [context], "context_t", perm=[0, 2, 1, 3])
    return g.op("Reshape", [merged, "c_merge_shape"], "context_merged")


def build_model(model_dir: Path, weights: dict[str, npt.NDArray[Any]]) -> onnx.ModelProto:
    """The full encoder: ``(input_ids, attention_mask)`` int64 ``(B, S)`` → ``(B, hidden)``."""
    cfg = BertConfig.from_model_dir(model_dir)
    g = _GraphBuilder(weights)
    head_dim = cfg.hidden_size // cfg.num_heads
    g.const("c_one", 1.0)
    g.const("c_half", 0.5)
    g.const("c_inv_sqrt2", 1.0 / math.sqrt(2.0))
    # Reshape treats 0 as "copy this dimension", so batch and sequence length stay dynamic.
    g.const("c_heads_shape", [0, 0, cfg.num_heads, head_dim], np.int64)
    g.const("c_merge_shape", [0, 0, cfg.hidden_size], np.int64)

    # Embeddings: word + position + token type 0 (single-segment input), then LayerNorm.
    words = g.op("Gather", [g.weight("embeddings.word_embeddings.weight"), INPUT_IDS], "words")
    ids_shape = g.op("Shape", [INPUT_IDS], "ids_shape")
    seq_len = g.op("Gather", [ids_shape, g.const("c_idx1", 1, np.int64)], "seq_len")
    start, step = g.const("c_zero_i64", 0, np.int64), g.const("c_step", 1, np.int64)
    positions = g.op("Range", [start, seq_len, step], "positions")
    position_table = g.weight("embeddings.position_embeddings.weight")
    pos = g.op("Gather", [position_table, positions], "pos_emb")
    token_type = g.const(
        "token_type_0", np.asarray(weights["embeddings.token_type_embeddings.weight"])[0]
    )
    summed = g.op("Add", [g.op("Add", [words, pos], "emb_wp"), token_type], "emb_sum")
    hidden = g.layer_norm(summed, "embeddings.LayerNorm", cfg.layer_norm_eps)

    # Additive attention bias: 0 where attended, a large negative number on padding.
    mask_f = g.op("Cast", [ATTENTION_MASK], "mask_f", to=TensorProto.FLOAT)
    inverted = g.op("Sub", ["c_one", mask_f], "mask_inv")
    bias = g.op("Mul", [inverted, g.const("c_neg", np.finfo(np.float32).min)], "mask_bias_flat")
    mask_bias = g.op("Unsqueeze", [bias, g.const("c_axes_12", [1, 2], np.int64)], "mask_bias")

    for layer in range(cfg.num_layers):
        prefix = f"encoder.layer.{layer}"
        context = _attention(g, hidden, mask_bias, prefix, cfg)
        attended = g.linear(context, f"{prefix}.attention.output.dense")
        residual = g.op("Add", [attended, hidden], "attn_residual")
        hidden = g.layer_norm(residual, f"{prefix}.attention.output.LayerNorm", cfg.layer_norm_eps)
        inner = g.gelu(g.linear(hidden, f"{prefix}.intermediate.dense"))
        out = g.linear(inner, f"{prefix}.output.dense")
        residual = g.op("Add", [out, hidden], "ffn_residual")
        hidden = g.layer_norm(residual, f"{prefix}.output.LayerNorm", cfg.layer_norm_eps)

    # Mean pooling over real tokens (clamped like sentence-transformers), then L2 normalisation.
    mask_3d = g.op("Unsqueeze", [mask_f, g.const("c_axes_2", [2], np.int64)], "mask_3d")
    kept = g.op("Mul", [hidden, mask_3d], "masked_hidden")
    axis1 = g.const("c_axes_1", [1], np.int64)
    total = g.op("ReduceSum", [kept, axis1], "token_sum", keepdims=0)
    count = g.op("ReduceSum", [mask_3d, axis1], "token_count", keepdims=0)
    count = g.op("Max", [count, g.const("c_count_eps", 1e-9)], "token_count_clamped")
    mean = g.op("Div", [total, count], "mean")
    squared = g.op("Mul", [mean, mean], "squared")
    axes_last = g.const("c_axes_last", [1], np.int64)
    norm = g.op("Sqrt", [g.op("ReduceSum", [squared, axes_last], "sq_sum", keepdims=1)], "norm")
    norm = g.op("Max", [norm, g.const("c_norm_eps", 1e-12)], "norm_clamped")
    g.nodes.append(helper.make_node("Div", [mean, norm], [OUTPUT], name=OUTPUT))

    graph = helper.make_graph(
        g.nodes,
        "sentence_encoder",
        [
            helper.make_tensor_value_info(INPUT_IDS, TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info(ATTENTION_MASK, TensorProto.INT64, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", cfg.hidden_size])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="emily-sovereign",
    )
    # ORT 1.2x reads IR version 9; newer onnx packages default to a higher one.
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model
