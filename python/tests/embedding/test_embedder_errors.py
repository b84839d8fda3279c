"""Every way the local embedder can be misconfigured ends in a typed error naming the setting."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emily.config import Settings, load_settings
from emily.errors import ConfigError
from emily.memory.embedding.base import EmbedderError
from emily.memory.embedding.factory import create_embedder
from emily.memory.embedding.graph import BertConfig, build_model
from emily.memory.embedding.onnx_minilm import OnnxMiniLMEmbedder, ensure_onnx_model

FIELD = "EMILY_EMBEDDER__MODEL_DIR"


@pytest.fixture
def model_copy(model_dir: Path, tmp_path: Path) -> Path:
    """A writable model dir: small files copied, the 90 MB weights linked."""
    target = tmp_path / "model"
    shutil.copytree(model_dir, target, ignore=shutil.ignore_patterns("model.safetensors"))
    (target / "model.safetensors").symlink_to(model_dir / "model.safetensors")
    return target


def settings_for(base: Settings, model_dir: Path, **database: object) -> Settings:
    return load_settings(
        state_dir=base.state_dir,
        cache_dir=base.cache_dir,
        embedder={"model_dir": model_dir},
        database=database,
    )


def edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_missing_model_dir(embedder_settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match="does not exist") as info:
        create_embedder(settings_for(embedder_settings, tmp_path / "nowhere"))
    assert info.value.field == FIELD


def test_missing_model_file(embedder_settings: Settings, model_copy: Path) -> None:
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(EmbedderError, match=r"lacks tokenizer\.json"):
        create_embedder(settings_for(embedder_settings, model_copy))


def test_dimension_mismatch_is_config_error(embedder_settings: Settings) -> None:
    settings = load_settings(
        state_dir=embedder_settings.state_dir,
        cache_dir=embedder_settings.cache_dir,
        database={"embedding_dim": 768},
    )
    with pytest.raises(ConfigError, match="384-d") as info:
        create_embedder(settings)
    assert info.value.field == "EMILY_DATABASE__EMBEDDING_DIM"


def test_non_string_text_names_row(onnx_embedder: OnnxMiniLMEmbedder) -> None:
    with pytest.raises(EmbedderError, match="must be a string") as info:
        onnx_embedder.embed(["fine", 42])  # type: ignore[list-item]
    assert info.value.row == 1


def test_single_string_is_rejected(onnx_embedder: OnnxMiniLMEmbedder) -> None:
    with pytest.raises(EmbedderError, match="single string"):
        onnx_embedder.embed("not a list")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_type": "gpt2"}, "not a BERT model"),
        ({"hidden_act": "relu"}, "not a BERT model"),
        ({"num_attention_heads": 5}, "not divisible"),
        ({"hidden_size": "wide"}, "usable BERT setting"),
    ],
)
def test_unsupported_config(model_copy: Path, changes: dict[str, object], message: str) -> None:
    edit_json(model_copy / "config.json", **changes)
    with pytest.raises(EmbedderError, match=message) as info:
        BertConfig.from_model_dir(model_copy)
    assert info.value.field == FIELD


def test_missing_config_key(model_copy: Path) -> None:
    data = json.loads((model_copy / "config.json").read_text())
    del data["num_hidden_layers"]
    (model_copy / "config.json").write_text(json.dumps(data))
    with pytest.raises(EmbedderError, match="num_hidden_layers"):
        BertConfig.from_model_dir(model_copy)


def test_unreadable_and_non_object_json(model_copy: Path) -> None:
    (model_copy / "config.json").write_text("{not json")
    with pytest.raises(EmbedderError, match="cannot read"):
        BertConfig.from_model_dir(model_copy)
    (model_copy / "config.json").write_text("[1, 2]")
    with pytest.raises(EmbedderError, match="not a JSON object"):
        BertConfig.from_model_dir(model_copy)


def test_only_mean_pooling_is_supported(model_copy: Path) -> None:
    edit_json(
        model_copy / "1_Pooling" / "config.json",
        pooling_mode_mean_tokens=False,
        pooling_mode_cls_token=True,
    )
    with pytest.raises(EmbedderError, match="mean pooling"):
        BertConfig.from_model_dir(model_copy)


def test_sequence_length_defaults_to_positions(model_copy: Path) -> None:
    (model_copy / "sentence_bert_config.json").unlink()
    assert BertConfig.from_model_dir(model_copy).max_seq_length == 512


def test_corrupt_weights(model_copy: Path, tmp_path: Path) -> None:
    (model_copy / "model.safetensors").unlink()
    (model_copy / "model.safetensors").write_bytes(b"definitely not safetensors")
    with pytest.raises(EmbedderError, match="cannot read"):
        ensure_onnx_model(model_copy, tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("**/*.onnx"))


def test_missing_weight_is_named(model_dir: Path) -> None:
    from safetensors.numpy import load_file

    weights = load_file(str(model_dir / "model.safetensors"))
    del weights["encoder.layer.3.output.dense.weight"]
    with pytest.raises(EmbedderError, match=r"encoder\.layer\.3\.output\.dense\.weight"):
        build_model(model_dir, weights)


def test_corrupt_tokenizer(
    model_copy: Path, embedder_settings: Settings, onnx_embedder: OnnxMiniLMEmbedder
) -> None:
    (model_copy / "tokenizer.json").write_text("{}")
    with pytest.raises(EmbedderError, match=r"tokenizer\.json"):
        OnnxMiniLMEmbedder(model_copy, embedder_settings.cache_dir)


def test_model_dir_setting_overrides_wheel(
    model_copy: Path, embedder_settings: Settings, onnx_embedder: OnnxMiniLMEmbedder
) -> None:
    embedder = create_embedder(settings_for(embedder_settings, model_copy))
    sample = ["same weights, another directory"]
    np.testing.assert_array_equal(embedder.embed(sample), onnx_embedder.embed(sample))
