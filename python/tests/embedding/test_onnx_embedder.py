"""The local embedder against sentence-transformers' own output and the embedder contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emily.config import Settings
from emily.memory.embedding.base import Embedder
from emily.memory.embedding.onnx_minilm import OnnxMiniLMEmbedder

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "minilm_reference.npz"


def test_reproduces_sentence_transformers(onnx_embedder: OnnxMiniLMEmbedder) -> None:
    """Golden vectors written by scripts/embedder-compare.py with sentence-transformers + torch."""
    reference = np.load(REFERENCE)
    sentences = [str(s) for s in reference["sentences"]]
    expected = reference["embeddings"]
    ours = onnx_embedder.embed(sentences)
    assert ours.shape == expected.shape
    assert float(np.abs(ours - expected).max()) <= 1e-4
    assert float((ours * expected).sum(axis=1).min()) >= 0.9999


def test_satisfies_protocol(onnx_embedder: OnnxMiniLMEmbedder) -> None:
    assert isinstance(onnx_embedder, Embedder)
    assert onnx_embedder.dim == 384
    assert onnx_embedder.name == "all-MiniLM-L6-v2"
    assert "all-MiniLM-L6-v2" in repr(onnx_embedder)


def test_batch_matches_single(onnx_embedder: OnnxMiniLMEmbedder) -> None:
    texts = [
        "short",
        "a somewhat longer sentence that needs more padding for its neighbours",
        "mid length text here",
        "x " * 40,
        "the last one",
    ] * 4  # 20 texts, more than one batch of 8, mixed lengths in each batch
    together = onnx_embedder.embed(texts)
    alone = np.vstack([onnx_embedder.embed([t]) for t in texts])
    assert np.abs(together - alone).max() <= 1e-5


def test_order_is_preserved(onnx_embedder: OnnxMiniLMEmbedder) -> None:
    texts = ["a very very very long sentence about gardens and flowers", "hi", "medium text"]
    forward = onnx_embedder.embed(texts)
    backward = onnx_embedder.embed(texts[::-1])
    assert np.abs(forward - backward[::-1]).max() <= 1e-5


def test_long_text_is_truncated_to_max_seq_length(onnx_embedder: OnnxMiniLMEmbedder) -> None:
    words = [f"word{i}" for i in range(600)]
    long_text = " ".join(words)
    encoded = onnx_embedder._tokenizer.encode(long_text)
    assert len(encoded.ids) == onnx_embedder.max_seq_length == 256
    # Text past the cut-off cannot change the vector.
    changed_tail = " ".join(words[:400] + ["completely different ending"] * 50)
    vectors = onnx_embedder.embed([long_text, changed_tail])
    assert np.abs(vectors[0] - vectors[1]).max() <= 1e-5
    assert np.isfinite(vectors).all()


def test_empty_input_gives_empty_matrix(onnx_embedder: OnnxMiniLMEmbedder) -> None:
    result = onnx_embedder.embed([])
    assert result.shape == (0, 384)
    assert result.dtype == np.float32


def test_empty_string_and_unicode(onnx_embedder: OnnxMiniLMEmbedder) -> None:
    texts = ["", "東京は日本の首都です。", "Ñandú 😀 façade", "\u200b\t\n"]
    vectors = onnx_embedder.embed(texts)
    assert vectors.shape == (4, 384)
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_output_is_unit_norm_float32(onnx_embedder: OnnxMiniLMEmbedder) -> None:
    vectors = onnx_embedder.embed(["one", "two words", "three words here"])
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_paraphrases_score_higher_than_unrelated(onnx_embedder: OnnxMiniLMEmbedder) -> None:
    pairs = [
        ("How do I reset my password?", "What is the procedure to change my login password?"),
        ("The new movie is awesome.", "The new movie is so great."),
        ("A man is eating food.", "A man is eating a piece of bread."),
        ("I am terribly sad tonight.", "I feel very unhappy this evening."),
    ]
    left = onnx_embedder.embed([a for a, _ in pairs])
    right = onnx_embedder.embed([b for _, b in pairs])
    similarity = left @ right.T
    for i in range(len(pairs)):
        unrelated = np.delete(similarity[i], i)
        assert similarity[i, i] > unrelated.max() + 0.1


def test_graph_is_cached_and_written_atomically(
    onnx_embedder: OnnxMiniLMEmbedder, embedder_settings: Settings, model_dir: Path
) -> None:
    path = onnx_embedder.model_path
    assert path.parent == embedder_settings.cache_dir / "models"
    assert path.name.startswith("all-MiniLM-L6-v2-") and path.suffix == ".onnx"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary leftovers
    built_at = path.stat().st_mtime_ns
    again = OnnxMiniLMEmbedder(model_dir, embedder_settings.cache_dir, threads=1)
    assert again.model_path == path
    assert path.stat().st_mtime_ns == built_at
    sample = ["cache hit gives the same vectors"]
    np.testing.assert_array_equal(again.embed(sample), onnx_embedder.embed(sample))
