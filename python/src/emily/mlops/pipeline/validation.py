"""The ``validate`` stage's checks: schema, types, ranges, nulls, duplicates, consistency of the
published mean/std with the ten ratings, and row-count bounds. Every violation names its row
(the line in its source file) and its column; any violation fails the stage, so nothing
downstream runs on data that is not what we think it is.

The published lexicon itself has a handful of rows whose printed std or mean disagree with
their ratings (a misplaced decimal point, a sample instead of a population std); those are
listed by token, with the reason, in ``params.yaml:validate.known_inconsistencies`` — explicit
exceptions, not a tolerance that would hide new ones.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from emily.errors import EmilyError
from emily.mlops.appraisal.lexicon import RATING_MAX, RATING_MIN, RATINGS_PER_ROW

if TYPE_CHECKING:
    import pandas as pd

    from emily.mlops.pipeline.params import ValidateParams


class DataValidationError(EmilyError):
    """The dataset violates a check; the message names the first violation's row and column."""


@dataclass(frozen=True)
class Violation:
    check: str
    row: int
    column: str
    token: str
    problem: str


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _row_violations(record: dict[str, Any], params: ValidateParams) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for column, value in record.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            found.append(("nulls", column, "is null"))
    token = record.get("token")
    if not isinstance(token, str) or not token.strip():
        found.append(("types", "token", "must be a non-empty string"))
    if record.get("kind") not in ("word", "other"):
        found.append(("types", "kind", f"must be word or other, got {record.get('kind')!r}"))
    if record.get("split") not in ("train", "test"):
        found.append(("types", "split", "must be train or test"))
    ratings = record.get("ratings")
    if not isinstance(ratings, list) or not all(
        isinstance(r, int) and not isinstance(r, bool) for r in ratings
    ):
        found.append(("types", "ratings", "must be a list of integers"))
        return found
    if len(ratings) != RATINGS_PER_ROW:
        found.append(("ranges", "ratings", f"has {len(ratings)} ratings, expected 10"))
    if any(not RATING_MIN <= r <= RATING_MAX for r in ratings):
        found.append(("ranges", "ratings", f"a rating is outside [{RATING_MIN}, {RATING_MAX}]"))
    for column, low, high in (
        ("published_mean", RATING_MIN, RATING_MAX),
        ("published_std", 0.0, float(RATING_MAX)),
        ("valence", -1.0, 1.0),
    ):
        value = record.get(column)
        if not _number(value):
            found.append(("types", column, "must be a finite number"))
        elif not low <= float(value or 0.0) <= high:
            found.append(("ranges", column, f"{value} is outside [{low}, {high}]"))
    if found or not ratings or record.get("source") != "vader":
        return found
    if token in params.known_inconsistencies:
        return found
    mean = statistics.fmean(ratings)
    if abs(float(record["published_mean"]) - mean) > params.mean_tolerance:
        found.append(
            (
                "consistency",
                "published_mean",
                f"{record['published_mean']} but ratings mean {mean:.3f}",
            )
        )
    population, sample = statistics.pstdev(ratings), statistics.stdev(ratings)
    std = float(record["published_std"])
    if min(abs(std - population), abs(std - sample)) > params.std_tolerance:
        found.append(
            (
                "consistency",
                "published_std",
                f"{std} matches neither the population ({population:.4f}) nor the sample "
                f"({sample:.4f}) std of the ratings",
            )
        )
    return found


def check(frame: pd.DataFrame, params: ValidateParams) -> dict[str, Any]:
    """All violations and per-check counts (the ``metrics/validation.json`` document)."""
    violations: list[Violation] = []
    for raw in frame.to_dict(orient="records"):
        record = {str(k): v for k, v in raw.items()}
        line = int(record.get("line") or 0)
        for check_name, column, problem in _row_violations(record, params):
            violations.append(
                Violation(check_name, line, column, str(record.get("token")), problem)
            )
    duplicated = frame[frame.duplicated(subset=["token"], keep="first")]
    for dup in duplicated.to_dict(orient="records"):
        violations.append(
            Violation("duplicates", int(dup["line"]), "token", str(dup["token"]), "duplicate")
        )
    rows = len(frame)
    if not params.min_rows <= rows <= params.max_rows:
        violations.append(
            Violation(
                "row_count",
                0,
                "rows",
                "",
                f"{rows} rows, expected between {params.min_rows} and {params.max_rows}",
            )
        )
    checks = ["nulls", "types", "ranges", "consistency", "duplicates", "row_count"]
    return {
        "passed": not violations,
        "rows": rows,
        "rows_by_kind": {str(k): int(v) for k, v in frame["kind"].value_counts().items()},
        "violations_by_check": {c: sum(v.check == c for v in violations) for c in checks},
        "known_inconsistencies": sorted(params.known_inconsistencies),
        "violations": [asdict(v) for v in violations[:100]],
    }


def raise_if_failed(report: dict[str, Any]) -> None:
    if report["passed"]:
        return
    first = report["violations"][0]
    total = sum(report["violations_by_check"].values())
    where = f"token {first['token']!r}: " if first["token"] else ""
    raise DataValidationError(
        f"{where}{first['problem']} ({first['check']}; {total} violation(s) in all, "
        "see metrics/validation.json)",
        field=first["column"],
        row=first["row"] or None,
    )
