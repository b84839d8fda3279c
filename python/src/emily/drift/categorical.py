"""Categorical features: Pearson's chi-square test on the 2 × K contingency table.

The categories are the union of both samples, so a category never seen in the reference is a
column with a zero reference count (it raises the statistic, as it should) rather than an error.
The χ² approximation needs expected counts of about 5 or more (Cochran's rule), so categories
whose expected count in the smaller sample falls below ``min_expected`` are pooled into one
"rare" cell before the test. The pooling depends on the two samples' combined counts only, never
on which sample a row came from, so the test stays valid; ``details`` says how many categories
were pooled and how much of the current sample is in categories the reference never had.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats  # type: ignore[import-untyped]

from emily.drift.checks import category_sample, check_alpha
from emily.drift.errors import DriftInputError
from emily.drift.results import DriftResult

MIN_ROWS = 5
MIN_EXPECTED = 5.0


def contingency_table(
    reference: Any, current: Any, *, min_expected: float = MIN_EXPECTED
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], dict[str, float | int | str]]:
    """The ``(2, cells)`` table after pooling rare categories, and what the pooling did."""
    if min_expected < 0:
        raise DriftInputError(f"must be >= 0, got {min_expected}", field="min_expected")
    ref = category_sample(reference, "reference", min_rows=MIN_ROWS)
    cur = category_sample(current, "current", min_rows=MIN_ROWS)
    n, m = len(ref), len(cur)
    inverse, labels = pd.factorize(np.concatenate([ref, cur]))
    k = len(labels)
    ref_counts = np.bincount(inverse[:n], minlength=k).astype(np.float64)
    cur_counts = np.bincount(inverse[n:], minlength=k).astype(np.float64)
    rare = (ref_counts + cur_counts) * min(n, m) / (n + m) < min_expected
    kept = ~rare
    table = np.stack([ref_counts[kept], cur_counts[kept]])
    if rare.any():
        pooled = np.array([[ref_counts[rare].sum()], [cur_counts[rare].sum()]])
        table = np.concatenate([table, pooled], axis=1)
    unseen = (ref_counts == 0) & (cur_counts > 0)
    details: dict[str, float | int | str] = {
        "categories": k,
        "cells": table.shape[1],
        "pooled_categories": int(rare.sum()),
        "unseen_categories": int(unseen.sum()),
        "unseen_share": float(cur_counts[unseen].sum() / m),
    }
    return table, details


def chi_square_test(
    reference: Any,
    current: Any,
    *,
    alpha: float = 0.05,
    min_expected: float = MIN_EXPECTED,
    feature: str = "value",
) -> DriftResult:
    """Chi-square test of homogeneity of the two samples' category frequencies."""
    alpha = check_alpha(alpha)
    table, details = contingency_table(reference, current, min_expected=min_expected)
    n, m = int(table[0].sum()), int(table[1].sum())
    if table.shape[1] < 2:
        # One cell left: both samples put everything in the same place; nothing can differ.
        statistic, p_value, dof = 0.0, 1.0, 0
    else:
        # Pearson's statistic written out (scipy's chi2_contingency without Yates' correction,
        # minus its per-call overhead, which dominated a 16-column report).
        expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
        statistic = float(np.sum((table - expected) ** 2 / expected))
        dof = table.shape[1] - 1
        p_value = float(stats.chi2.sf(statistic, dof))
    details["dof"] = dof
    return DriftResult.by_p_value(
        test="chi2",
        feature=feature,
        statistic=statistic,
        p_value=p_value,
        alpha=alpha,
        n_reference=n,
        n_current=m,
        details=details,
    )
