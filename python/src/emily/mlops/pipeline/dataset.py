"""The labelled dataset as one table: the VADER lexicon plus any extra human-labelled JSONL
files under ``data/extra/`` (new data registered by drift-triggered retraining), with the
train/test split fixed by ``prepare``: a seeded hash of each entry's token, so a row keeps its
split when data is added."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from emily.errors import EmilyError
from emily.jsonio import read_json_lines
from emily.mlops.appraisal.lexicon import (
    RATING_MAX,
    LexiconError,
    LexiconRow,
    read_lexicon,
)

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = [
    "token",
    "kind",
    "source",
    "line",
    "published_mean",
    "published_std",
    "ratings",
    "valence",
    "split",
]


class DatasetError(EmilyError):
    """The prepared dataset is missing, unreadable or not what the pipeline wrote."""


def _row(row: LexiconRow, source: str) -> dict[str, Any]:
    return {
        "token": row.token,
        "kind": row.kind,
        "source": source,
        "line": row.line,
        "published_mean": row.published_mean,
        "published_std": row.published_std,
        "ratings": list(row.ratings),
        "valence": row.mean / RATING_MAX,
    }


def read_extra(directory: Path) -> list[LexiconRow]:
    """``{"text": str, "ratings": [int × 10]}`` per line, in every ``*.jsonl`` (sorted)."""
    rows: list[LexiconRow] = []
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        for line, value in read_json_lines(path, LexiconError):
            if not isinstance(value, dict) or not isinstance(value.get("text"), str):
                raise LexiconError(f"{path.name}: needs a string 'text'", field="text", row=line)
            ratings = value.get("ratings")
            if not isinstance(ratings, list) or not all(
                isinstance(r, int) and not isinstance(r, bool) for r in ratings
            ):
                raise LexiconError(
                    f"{path.name}: needs a list of integer 'ratings'", field="ratings", row=line
                )
            mean = sum(ratings) / len(ratings) if ratings else 0.0
            std = (sum((r - mean) ** 2 for r in ratings) / len(ratings)) ** 0.5 if ratings else 0.0
            rows.append(LexiconRow(line, value["text"], mean, std, tuple(ratings)))
    return rows


def duplicated_tokens(lexicon: Path) -> list[str]:
    seen: set[str] = set()
    twice: list[str] = []
    for row in read_lexicon(lexicon):
        if row.token in seen:
            twice.append(row.token)
        seen.add(row.token)
    return sorted(twice)


def unit_draw(seed: int, purpose: str, token: str) -> float:
    """A uniform draw in [0, 1) fixed by the seed, the purpose and the token alone."""
    key = f"{seed}\x00{purpose}\x00{token}".encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def build(
    lexicon: Path,
    extra_dir: Path,
    *,
    test_fraction: float,
    seed: int,
    max_rows: int | None = None,
    lexicon_kinds: Collection[str] = ("word", "other"),
) -> pd.DataFrame:
    """The table. A row's sample membership and split are draws from its own token (and the
    seed), not from its position among the others: new data leaves every earlier row where it
    was. A retrained model is therefore compared with the champion on held-out rows neither
    was trained on (re-splitting the grown table would put champion training rows in the test
    split and flatter it)."""
    import pandas as pd

    # Which of the lexicon's kinds the dataset starts from; extra data always enters whole (a
    # model that starts from dictionary words learns chat text only from the labelled turns).
    records = [_row(r, "vader") for r in read_lexicon(lexicon) if r.kind in lexicon_kinds]
    vader = pd.DataFrame.from_records(records, columns=COLUMNS[:-1])
    # The published lexicon lists 14 tokens twice with different ratings; VADER itself keeps
    # the last entry (its loader fills a dict), so does our normalisation.
    vader = vader.drop_duplicates(subset=["token"], keep="last")
    if max_rows is not None and max_rows < len(vader):
        # A smaller pipeline for quick runs (tests, experiments), same proportions of kinds:
        # each kind's rows with the smallest draws.
        draws = vader["token"].map(lambda t: unit_draw(seed, "sample", t))
        keep: list[Any] = []
        for _, group in vader.assign(draw=draws).groupby("kind"):
            count = round(max_rows * len(group) / len(vader))
            keep.extend(group.nsmallest(count, "draw").index)
        vader = vader.loc[sorted(keep)]
    extra = pd.DataFrame.from_records(
        [_row(r, "extra") for r in read_extra(extra_dir)], columns=COLUMNS[:-1]
    )
    # A labelled turn of a token the lexicon has replaces the lexicon's row (the newer label).
    frame = pd.concat([vader, extra] if len(extra) else [vader])
    frame = frame.drop_duplicates(subset=["token"], keep="last").reset_index(drop=True)
    if frame.empty:
        raise DatasetError("no rows to prepare", field="lexicon")
    draws = frame["token"].map(lambda t: unit_draw(seed, "split", t))
    frame["split"] = ["test" if d < test_fraction else "train" for d in draws]
    return frame


def frame_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of the table's content in a canonical JSON form (independent of Parquet
    encoding), stored beside the Parquet file so readers can tell it is what prepare wrote."""
    digest = hashlib.sha256()
    for record in frame[COLUMNS].to_dict(orient="records"):
        digest.update(json.dumps(record, sort_keys=True, default=_plain).encode())
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """numpy scalars and arrays (what Parquet gives back) as plain JSON values."""
    return value.tolist() if hasattr(value, "tolist") else list(value)


def read(path: Path | IO[bytes], meta: Path | None = None) -> pd.DataFrame:
    """The prepared table; a missing, corrupt or tampered file is a ``DatasetError``."""
    import pandas as pd
    import pyarrow

    try:
        frame = pd.read_parquet(path)
    except (OSError, pyarrow.ArrowException, ValueError) as exc:
        raise DatasetError(
            f"cannot read {path}: {str(exc).splitlines()[0]}",
            hint="rebuild it with `dvc repro prepare` (or `dvc pull`)",
        ) from exc
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DatasetError(f"{path} lacks columns {missing}", field="columns")
    frame["ratings"] = frame["ratings"].map(lambda values: [int(v) for v in values])
    if meta is not None and meta.is_file():
        expected = json.loads(meta.read_text(encoding="utf-8")).get("content_sha256")
        if expected and frame_hash(frame) != expected:
            raise DatasetError(
                f"{path} does not match its recorded content hash",
                hint="rebuild it with `dvc repro prepare`",
            )
    return frame
