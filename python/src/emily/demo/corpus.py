"""A real text corpus with affect labels, built offline from Debian's ``wordnet-base``.

Episodes are WordNet synsets: ``"<lemma>: <gloss>"``. Selection is deterministic (synsets
ordered by a SHA-256 of their part of speech and offset, first ``size`` kept), so the same size
always yields the same corpus.

Valence comes from the champion appraisal model when one is registered: a model trained on the
human ratings of the VADER lexicon (``emily.mlops.appraisal``), so those labels are
*human-trained*. Arousal and dominance have no human ratings here and stay *derived* (as does
valence when no champion exists). Each episode's ``context.labels`` says which is which.

Derived labels: each dimension has an anchor direction in the
embedding space: the mean embedding of a small seed word list for the positive pole minus that of
the negative pole (pleasant/unpleasant, excited/calm, dominant/submissive). A gloss's score is the
projection of its embedding on the unit anchor, centred on the corpus median, divided
by a robust corpus scale (the 95th percentile of absolute centred scores) and clipped to
[-1, 1]. The labels are thus only as good as the embedding's notion of those poles; they order
glosses plausibly (``joy`` above ``grief``) but say nothing about how a person would rate them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from emily.errors import EmilyError
from emily.jsonio import read_json_lines
from emily.mlops.appraisal.anchors import label_affect

WORDNET_DIR = Path("/usr/share/wordnet")
POS_FILES = {"n": "data.noun", "v": "data.verb", "a": "data.adj", "r": "data.adv"}
POS_NAMES = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective", "r": "adverb"}
MAX_GLOSS_CHARS = 400
MIN_GLOSS_CHARS = 20


Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]
# (texts, embeddings) → (valence in [-1, 1], what produced it, e.g. "emily-appraisal/3")
ValenceModel = Callable[
    [Sequence[str], npt.NDArray[np.float32]], tuple[npt.NDArray[np.float64], str]
]
DERIVED = "anchor (derived)"


class CorpusError(EmilyError):
    """The WordNet files are missing or malformed, or the corpus options are invalid."""


@dataclass(frozen=True)
class Synset:
    offset: str
    pos: str
    lemmas: tuple[str, ...]
    gloss: str

    @property
    def key(self) -> str:
        return f"{self.pos}:{self.offset}"

    @property
    def content(self) -> str:
        return f"{self.lemmas[0]}: {self.gloss}"


def parse_data_line(line: str, *, row: int | None = None) -> Synset | None:
    """One line of a WordNet ``data.*`` file (see wndb(5WN)); ``None`` for licence lines."""
    if line.startswith("  ") or not line.strip():
        return None
    head, sep, gloss = line.partition(" | ")
    fields = head.split()
    if not sep or len(fields) < 5:
        raise CorpusError("not a WordNet data line", field="line", row=row)
    try:
        count = int(fields[3], 16)
    except ValueError as exc:
        raise CorpusError("word count is not hexadecimal", field="w_cnt", row=row) from exc
    words = fields[4 : 4 + 2 * count : 2]
    if len(words) != count:
        raise CorpusError("fewer words than announced", field="w_cnt", row=row)
    # Adjective markers like "(p)" follow some lemmas; underscores join compound words.
    lemmas = tuple(w.split("(")[0].replace("_", " ") for w in words)
    return Synset(fields[0], fields[2], lemmas, gloss.strip())


def read_synsets(wordnet_dir: Path = WORDNET_DIR) -> Iterator[Synset]:
    """Every synset of the four parts of speech whose gloss fits our length bounds."""
    for name in POS_FILES.values():
        path = wordnet_dir / name
        if not path.is_file():
            raise CorpusError(
                f"{path} not found", hint="install the Debian package wordnet-base (make setup)"
            )
        with path.open(encoding="utf-8", errors="replace") as handle:
            for row, line in enumerate(handle, start=1):
                synset = parse_data_line(line, row=row)
                if synset is not None and MIN_GLOSS_CHARS <= len(synset.gloss) <= MAX_GLOSS_CHARS:
                    yield synset


def select_synsets(synsets: Sequence[Synset], size: int) -> list[Synset]:
    """The first ``size`` synsets in hash order: deterministic and spread over all of WordNet."""
    if size < 1:
        raise CorpusError("corpus size must be at least 1", field="size")
    if size > len(synsets):
        raise CorpusError(f"WordNet has only {len(synsets)} usable synsets", field="size")
    ranked = sorted(synsets, key=lambda s: hashlib.sha256(s.key.encode()).digest())
    return ranked[:size]


def spread_times(keys: Sequence[str], now: datetime, days: int) -> list[datetime]:
    """Deterministic timestamps over the ``days`` before ``now`` (several monthly partitions)."""
    if now.tzinfo is None:
        raise CorpusError("reference time must carry a UTC offset", field="now")
    if days < 1:
        raise CorpusError("days must be at least 1", field="days")
    span = days * 86_400
    times = []
    for key in keys:
        seconds = int.from_bytes(hashlib.sha256(f"time:{key}".encode()).digest()[:8], "big")
        times.append(now - timedelta(seconds=1 + seconds % span))
    return times


def build_corpus(
    embed: Embed,
    *,
    size: int,
    now: datetime | None = None,
    days: int = 120,
    wordnet_dir: Path = WORDNET_DIR,
    progress: Callable[[int], None] | None = None,
    valence_model: ValenceModel | None = None,
) -> list[dict[str, Any]]:
    """Ingest-format episodes (``emily memory ingest`` lines) with embeddings and affect;
    valence from ``valence_model`` when given, else derived like the other two."""
    chosen = select_synsets(list(read_synsets(wordnet_dir)), size)
    reference = (now or datetime.now(UTC)).replace(microsecond=0)
    texts = [s.content for s in chosen]
    chunks = []
    step = 256
    for start in range(0, len(texts), step):
        chunks.append(embed(texts[start : start + step]))
        if progress is not None:
            progress(len(texts[start : start + step]))
    embeddings = np.concatenate(chunks, axis=0)
    affect = label_affect(embed, embeddings)
    labels = {"valence": DERIVED, "arousal": DERIVED, "dominance": DERIVED}
    if valence_model is not None:
        valence, source = valence_model(texts, embeddings)
        affect[:, 0] = np.clip(valence, -1.0, 1.0)
        labels["valence"] = f"{source} (trained on human ratings)"
    times = spread_times([s.key for s in chosen], reference, days)
    episodes = []
    for synset, vector, vad, when in zip(chosen, embeddings, affect, times, strict=True):
        episodes.append(
            {
                "content": synset.content,
                "occurred_at": when.isoformat(),
                "affect": [round(float(x), 4) for x in vad],
                "context": {
                    "source": "wordnet",
                    "synset": synset.key,
                    "pos": POS_NAMES.get(synset.pos, synset.pos),
                    "lemmas": list(synset.lemmas),
                    "labels": labels,
                },
                "embedding": [round(float(x), 6) for x in vector],
            }
        )
    return episodes


def write_jsonl(episodes: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write atomically, so an interrupted build never leaves a half corpus that looks cached."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for episode in episodes:
            handle.write(json.dumps(episode, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [value for _, value in read_json_lines(path, CorpusError)]


def relabel(
    episodes: list[dict[str, Any]], embed: Embed, valence_model: ValenceModel | None
) -> None:
    """Valence of cached episodes again, from their stored embeddings (in place): from
    ``valence_model``, or derived when there is none."""
    if not episodes:
        return
    embeddings = np.asarray([e["embedding"] for e in episodes], dtype=np.float32)
    if valence_model is not None:
        valence, source = valence_model([e["content"] for e in episodes], embeddings)
        label = f"{source} (trained on human ratings)"
    else:
        from emily.mlops.appraisal.anchors import AnchorAxis

        valence, label = AnchorAxis.fit(embed, "valence", embeddings).score(embeddings), DERIVED
    for episode, value in zip(episodes, valence, strict=True):
        episode["affect"][0] = round(float(np.clip(value, -1.0, 1.0)), 4)
        labels = episode["context"].setdefault("labels", {"arousal": DERIVED, "dominance": DERIVED})
        labels["valence"] = label
