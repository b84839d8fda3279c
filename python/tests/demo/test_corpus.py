from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from emily.config import Settings
from emily.demo.corpus import (
    CorpusError,
    build_corpus,
    parse_data_line,
    read_jsonl,
    read_synsets,
    select_synsets,
    spread_times,
    write_jsonl,
)
from emily.memory.embedding.factory import create_embedder
from emily.memory.models import EpisodeLimits, validate_episode

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def corpus(settings: Settings) -> list[dict[str, object]]:
    return build_corpus(create_embedder(settings).embed, size=60, now=NOW, days=120)


def test_parse_data_line_reads_lemmas_and_gloss() -> None:
    line = (
        "00002137 03 n 02 abstraction 0 abstract_entity 0 010 @ 00001740 n 0000 "
        "| a general concept formed by extracting common features  \n"
    )
    synset = parse_data_line(line)
    assert synset is not None
    assert synset.lemmas == ("abstraction", "abstract entity")
    assert synset.content == "abstraction: a general concept formed by extracting common features"
    assert parse_data_line("  1 This software and database is being provided\n") is None
    with pytest.raises(CorpusError, match="row 7"):
        parse_data_line("garbage without a gloss", row=7)
    with pytest.raises(CorpusError, match="w_cnt"):
        parse_data_line("00000001 03 n zz foo 0 | gloss")
    with pytest.raises(CorpusError, match="fewer words"):
        parse_data_line("00000001 03 n 05 foo 0 | gloss")


def test_selection_is_deterministic_and_prefix_stable() -> None:
    synsets = list(read_synsets())
    assert len(synsets) > 10_000
    small = select_synsets(synsets, 50)
    large = select_synsets(synsets, 200)
    assert [s.key for s in small] == [s.key for s in large[:50]]
    assert len({s.pos for s in large}) >= 3  # spread over parts of speech
    with pytest.raises(CorpusError, match="size"):
        select_synsets(synsets, 0)
    with pytest.raises(CorpusError, match="only"):
        select_synsets(synsets[:5], 6)


def test_missing_wordnet_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="wordnet-base"):
        list(read_synsets(tmp_path))


def test_times_spread_over_months_before_now() -> None:
    keys = [f"n:{i:08d}" for i in range(500)]
    times = spread_times(keys, NOW, 120)
    assert all(NOW - timedelta(days=120) <= t < NOW for t in times)
    assert len({(t.year, t.month) for t in times}) >= 4
    assert times == spread_times(keys, NOW, 120)
    with pytest.raises(CorpusError, match="offset"):
        spread_times(keys, NOW.replace(tzinfo=None), 120)
    with pytest.raises(CorpusError, match="days"):
        spread_times(keys, NOW, 0)


def test_corpus_lines_are_valid_ingest_lines(
    corpus: list[dict[str, object]], settings: Settings, tmp_path: Path
) -> None:
    db = settings.database
    for row, raw in enumerate(corpus, start=1):
        episode = validate_episode(
            raw, row=row, limits=EpisodeLimits(dim=db.embedding_dim, max_chars=4000)
        )
        assert episode.occurred_at.utcoffset() is not None
        assert episode.context["source"] == "wordnet"
        assert len(episode.embedding or []) == db.embedding_dim
    path = write_jsonl(corpus, tmp_path / "c" / "wordnet.jsonl")
    assert read_jsonl(path) == corpus
    path.write_text('{"content": "x"}\nnot json\n', encoding="utf-8")
    with pytest.raises(CorpusError, match="row 2"):
        read_jsonl(path)


def test_affect_in_range_and_spread(corpus: list[dict[str, object]]) -> None:
    affect = np.array([e["affect"] for e in corpus], dtype=float)
    assert affect.shape == (60, 3)
    assert (affect >= -1).all() and (affect <= 1).all()
    # Centred on the corpus median: every dimension has glosses on both sides.
    assert ((affect < 0).any(axis=0) & (affect > 0).any(axis=0)).all()


def test_corpus_is_deterministic(corpus: list[dict[str, object]], settings: Settings) -> None:
    again = build_corpus(create_embedder(settings).embed, size=60, now=NOW, days=120)
    assert [e["content"] for e in again] == [e["content"] for e in corpus]
    assert [e["affect"] for e in again] == [e["affect"] for e in corpus]
    assert [e["occurred_at"] for e in again] == [e["occurred_at"] for e in corpus]


def test_labels_order_clear_cases(settings: Settings) -> None:
    from emily.mlops.appraisal.anchors import label_affect

    embed = create_embedder(settings).embed
    texts = [
        "joy: the emotion of great happiness",
        "grief: intense sorrow caused by loss of a loved one",
        "table: a piece of furniture with a flat top",
        "chair: a seat for one person, with a back",
        "lamp: a piece of furniture holding a light source",
    ]
    labels = label_affect(embed, embed(texts))
    assert labels[0, 0] > labels[1, 0]
