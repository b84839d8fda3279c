"""The anchor method: affect as the projection of an embedding on the direction from a
negative to a positive pole (the mean embeddings of two short seed-word lists).

It needs no training data, which is why it labels what has no human ratings (arousal and
dominance: *derived* labels) and why it is the loop's fallback when the trained appraiser is
unavailable. It is also the baseline the trained model is measured against (docs/mlops.md).
Scores are centred on the median of a reference sample and divided by the 95th percentile of
the absolute centred scores, then clipped to [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from emily.errors import EmilyError

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]

# Seed words of each pole; short, common and unambiguous so the anchor is not dominated by one
# sense. Order: (positive pole, negative pole).
SEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "valence": (
        (
            "joy",
            "love",
            "happiness",
            "delight",
            "pleasure",
            "kindness",
            "beauty",
            "success",
            "comfort",
            "hope",
            "gratitude",
            "peace",
        ),
        (
            "grief",
            "hatred",
            "misery",
            "pain",
            "disgust",
            "cruelty",
            "ugliness",
            "failure",
            "suffering",
            "despair",
            "fear",
            "death",
        ),
    ),
    "arousal": (
        (
            "excitement",
            "rage",
            "panic",
            "thrill",
            "frenzy",
            "alarm",
            "explosion",
            "passion",
            "ecstasy",
            "terror",
            "urgency",
            "fury",
        ),
        (
            "calm",
            "sleep",
            "rest",
            "boredom",
            "stillness",
            "quiet",
            "relaxation",
            "drowsiness",
            "serenity",
            "idleness",
            "silence",
            "tranquility",
        ),
    ),
    "dominance": (
        (
            "power",
            "control",
            "authority",
            "command",
            "victory",
            "strength",
            "leadership",
            "mastery",
            "confidence",
            "domination",
            "ruler",
            "influence",
        ),
        (
            "weakness",
            "submission",
            "obedience",
            "helplessness",
            "defeat",
            "surrender",
            "dependence",
            "servant",
            "vulnerability",
            "powerlessness",
            "captive",
            "timidity",
        ),
    ),
}
DIMENSIONS = ("valence", "arousal", "dominance")


class AnchorError(EmilyError):
    """An anchor direction cannot be built (poles coincide, empty reference)."""


@dataclass(frozen=True)
class AnchorAxis:
    direction: npt.NDArray[np.float64]
    centre: float
    scale: float

    @classmethod
    def fit(
        cls, embed: Embed, dimension: str, reference: npt.NDArray[np.floating] | None = None
    ) -> AnchorAxis:
        """The axis of ``dimension``, scaled on ``reference`` embeddings (default: the seed
        words themselves, for use without a corpus)."""
        positive, negative = SEEDS[dimension]
        pos = embed(list(positive)).astype(np.float64)
        neg = embed(list(negative)).astype(np.float64)
        direction = pos.mean(axis=0) - neg.mean(axis=0)
        norm = float(np.linalg.norm(direction))
        if norm == 0.0:
            raise AnchorError("seed poles coincide; cannot build an anchor direction")
        direction /= norm
        sample = np.vstack([pos, neg]) if reference is None else np.asarray(reference, np.float64)
        if len(sample) == 0:
            raise AnchorError("empty reference sample", field="reference")
        projected = sample @ direction
        centre = float(np.median(projected))
        scale = float(np.percentile(np.abs(projected - centre), 95)) or 1.0
        return cls(direction, centre, scale)

    def score(self, embeddings: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        projected = np.asarray(embeddings, dtype=np.float64) @ self.direction
        out: npt.NDArray[np.float64] = np.clip((projected - self.centre) / self.scale, -1.0, 1.0)
        return out


def label_affect(embed: Embed, embeddings: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """``(n, 3)`` valence/arousal/dominance in [-1, 1], each axis scaled on ``embeddings``."""
    if len(embeddings) == 0:
        return np.zeros((0, 3))
    columns = [AnchorAxis.fit(embed, d, embeddings).score(embeddings) for d in DIMENSIONS]
    return np.stack(columns, axis=1)
