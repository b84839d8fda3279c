"""Real data for the drift tests: the VADER lexicon (human valence ratings, shipped in the
``vadersentiment`` wheel) and a few hundred of its entries embedded with the project's embedder
(built once per session into a temporary cache; a few seconds)."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from emily.config import load_settings
from emily.memory.embedding.factory import create_embedder

WORDS = 240
OTHERS = 120


@dataclass(frozen=True)
class Lexicon:
    tokens: list[str]
    valence: npt.NDArray[np.float64]  # mean human rating in [-4, 4]
    alphabetic: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class LexiconEmbeddings:
    words: npt.NDArray[np.float32]  # (WORDS, 384): alphabetic entries
    others: npt.NDArray[np.float32]  # (OTHERS, 384): emoticons, symbols


@pytest.fixture(scope="session")
def lexicon() -> Lexicon:
    text = (importlib.resources.files("vaderSentiment") / "vader_lexicon.txt").read_text("utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line.strip()]
    tokens = [r[0] for r in rows]
    return Lexicon(
        tokens,
        np.array([float(r[1]) for r in rows]),
        np.array([t.isalpha() for t in tokens]),
    )


@pytest.fixture(scope="session")
def lexicon_embeddings(
    lexicon: Lexicon, tmp_path_factory: pytest.TempPathFactory
) -> LexiconEmbeddings:
    root = tmp_path_factory.mktemp("drift-embedder")
    settings = load_settings(
        state_dir=root / "state",
        cache_dir=root / "cache",
        log_format="json",
        embedder={"threads": 1, "batch_size": 32},
    )
    embedder = create_embedder(settings)
    rng = np.random.default_rng(7)
    words = np.flatnonzero(lexicon.alphabetic)
    others = np.flatnonzero(~lexicon.alphabetic)
    chosen_words = rng.choice(words, WORDS, replace=False)
    chosen_others = rng.choice(others, OTHERS, replace=False)
    return LexiconEmbeddings(
        embedder.embed([lexicon.tokens[i] for i in chosen_words]),
        embedder.embed([lexicon.tokens[i] for i in chosen_others]),
    )


def binomial_upper(rate: float, trials: int, z: float = 3.0) -> float:
    """Upper bound on an observed rate whose true value is ``rate`` (``z`` standard errors)."""
    return rate + z * float(np.sqrt(rate * (1.0 - rate) / trials))
