"""Multi-feature comparisons: one test per column by its type, then a correction for testing many
columns at once.

Correction: testing k features at level α each raises the chance of at least one false alarm to
about 1 − (1 − α)^k (40 % for ten features at 5 %). The report controls that family-wise error
rate at α with Holm's step-down method by default: sort the k p-values, compare the i-th
smallest (i from 0) with α / (k − i) and stop at the first that passes. It is never less powerful
than Bonferroni (every p-value against α / k, also available) and needs no independence between
features. Adjusted p-values are reported (Holm's are made monotone), so ``adjusted ≤ α`` is the
decision. PSI results are decided by their threshold and stay outside the family.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from emily.drift.categorical import chi_square_test
from emily.drift.checks import FloatArray, check_alpha, check_rows
from emily.drift.errors import DriftInputError
from emily.drift.numeric import PSI_MAJOR, ks_test, psi_test
from emily.drift.results import Correction, DriftReport, DriftResult

FeatureKind = Literal["numeric", "categorical"]
NumericTest = Literal["ks", "psi"]


def adjust_p_values(p_values: Sequence[float], method: Correction = "holm") -> FloatArray:
    """Family-wise adjusted p-values in input order (``none`` returns them unchanged)."""
    p = np.asarray(p_values, dtype=np.float64)
    k = len(p)
    if k == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(p * k, 1.0)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * (k - np.arange(k)))
    adjusted = np.empty(k)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def combine(
    results: Sequence[DriftResult], *, alpha: float = 0.05, correction: Correction = "holm"
) -> DriftReport:
    """A report over results computed elsewhere (per-feature tests, an embedding test, …)."""
    alpha = check_alpha(alpha)
    if not results:
        raise DriftInputError("no results to combine", field="results")
    tested = [i for i, r in enumerate(results) if r.p_value is not None]
    adjusted = adjust_p_values([results[i].p_value or 0.0 for i in tested], correction)
    final = list(results)
    for index, value in zip(tested, adjusted, strict=True):
        final[index] = results[index].model_copy(
            update={"adjusted_p_value": float(value), "alpha": alpha, "drift": bool(value < alpha)}
        )
    drifted = tuple(dict.fromkeys(r.feature for r in final if r.drift))
    return DriftReport(
        alpha=alpha,
        correction=correction,
        results=tuple(final),
        drift=bool(drifted),
        drifted=drifted,
        n_reference=max(r.n_reference for r in final),
        n_current=max(r.n_current for r in final),
    )


def infer_kind(series: pd.Series) -> FeatureKind:
    """Numbers (not booleans) are numeric; categories, strings, objects and booleans are not."""
    is_number = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    return "numeric" if is_number else "categorical"


def feature_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    kinds: Mapping[str, FeatureKind] | None = None,
    alpha: float = 0.05,
    correction: Correction = "holm",
    numeric_test: NumericTest = "ks",
    psi_bins: int = 10,
    psi_threshold: float = PSI_MAJOR,
) -> DriftReport:
    """Test every column (``columns``: a subset, in that order) of ``current`` against
    ``reference``: numeric → KS (or PSI), categorical → chi-square; ``kinds`` overrides the
    dtype-based choice (e.g. an integer code column that is really categorical)."""
    alpha = check_alpha(alpha)
    check_rows(len(reference), "reference", 1)
    check_rows(len(current), "current", 1)
    names = list(reference.columns if columns is None else columns)
    if not names:
        raise DriftInputError("no columns to test", field="columns")
    for side, frame in (("reference", reference), ("current", current)):
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise DriftInputError(f"column '{missing[0]}' is missing", field=f"{side}.{missing[0]}")
    kinds = dict(kinds or {})
    unknown = [c for c in kinds if c not in names]
    if unknown:
        raise DriftInputError(f"'{unknown[0]}' is not a tested column", field="kinds")
    results = []
    for name in names:
        kind = kinds.get(name) or infer_kind(reference[name])
        results.append(
            _one_column(
                reference[name],
                current[name],
                str(name),
                kind,
                alpha,
                numeric_test,
                psi_bins,
                psi_threshold,
            )
        )
    return combine(results, alpha=alpha, correction=correction)


def _one_column(
    reference: pd.Series,
    current: pd.Series,
    name: str,
    kind: FeatureKind,
    alpha: float,
    numeric_test: NumericTest,
    psi_bins: int,
    psi_threshold: float,
) -> DriftResult:
    try:
        if kind == "categorical":
            return chi_square_test(reference, current, alpha=alpha, feature=name)
        if numeric_test == "psi":
            return psi_test(
                reference, current, bins=psi_bins, threshold=psi_threshold, feature=name
            )
        return ks_test(reference, current, alpha=alpha, feature=name)
    except DriftInputError as exc:
        # The detectors name the side; in a report the column matters as much.
        raise DriftInputError(
            exc.message, field=f"{exc.field}.{name}", row=exc.row, hint=exc.hint
        ) from exc


def prediction_drift(
    reference_predictions: Any,
    current_predictions: Any,
    *,
    kind: FeatureKind = "numeric",
    alpha: float = 0.05,
    numeric_test: NumericTest = "ks",
    feature: str = "prediction",
) -> DriftResult:
    """Drift of a model's outputs: the per-feature test of their type on the predictions
    (scores or regression outputs → KS or PSI, predicted labels → chi-square)."""
    if kind == "categorical":
        return chi_square_test(
            reference_predictions, current_predictions, alpha=alpha, feature=feature
        )
    if numeric_test == "psi":
        return psi_test(reference_predictions, current_predictions, feature=feature)
    return ks_test(reference_predictions, current_predictions, alpha=alpha, feature=feature)
