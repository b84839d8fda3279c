"""Input checks shared by the detectors: each turns a bad sample into a :class:`DriftInputError`
naming the argument and the first offending position, before any numerics run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from emily.drift.errors import DriftInputError

FloatArray = npt.NDArray[np.float64]


def check_alpha(alpha: float, field: str = "alpha") -> float:
    if not 0.0 < alpha < 1.0:
        raise DriftInputError(f"must lie strictly between 0 and 1, got {alpha}", field=field)
    return float(alpha)


def check_rows(count: int, field: str, min_rows: int) -> None:
    if count == 0:
        raise DriftInputError("the sample is empty", field=field)
    if count < min_rows:
        raise DriftInputError(
            f"{count} rows, the test needs at least {min_rows}",
            field=field,
            hint="collect a larger window before testing",
        )


def _first_nonfinite(values: FloatArray, field: str) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise DriftInputError(
            "NaN or infinite value",
            field=field,
            row=int(bad[0]),
            hint=f"{bad.size} non-finite value(s); drop or impute them before testing",
        )


def numeric_sample(values: Any, field: str, *, min_rows: int) -> FloatArray:
    """A 1-D float64 copy of ``values``; empty, too short, non-numeric or non-finite → error."""
    if isinstance(values, pd.Series):
        if not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)):
            raise DriftInputError(f"column of dtype {values.dtype} is not numeric", field=field)
        values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DriftInputError("values are not numbers", field=field) from exc
    if array.ndim != 1:
        raise DriftInputError(f"expected a 1-D sample, got shape {array.shape}", field=field)
    check_rows(len(array), field, min_rows)
    _first_nonfinite(array, field)
    return array


def category_sample(values: Any, field: str, *, min_rows: int) -> npt.NDArray[np.object_]:
    """Category labels as strings (an object array: hashing them is what the test needs);
    missing labels are an error (make "missing" an explicit category)."""
    series = values if isinstance(values, pd.Series) else pd.Series(list(_iterable(values, field)))
    check_rows(len(series), field, min_rows)
    if isinstance(series.dtype, pd.CategoricalDtype):
        # Categorical columns convert their few categories, not every row (100x faster).
        codes = series.cat.codes.to_numpy()
        _no_missing(np.flatnonzero(codes < 0), field)
        names = np.array([str(c) for c in series.cat.categories] or [""], dtype=object)
        labels: npt.NDArray[np.object_] = names[codes]
        return labels
    _no_missing(np.flatnonzero(series.isna().to_numpy()), field)
    return series.astype(str).to_numpy(dtype=object)


def _no_missing(missing: npt.NDArray[np.intp], field: str) -> None:
    if missing.size:
        raise DriftInputError(
            "missing category label",
            field=field,
            row=int(missing[0]),
            hint="map missing values to an explicit category (e.g. 'missing') first",
        )


def _iterable(values: Any, field: str) -> Sequence[Any]:
    if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
        raise DriftInputError("expected a sequence of labels", field=field)
    array = np.asarray(values, dtype=object)
    if array.ndim != 1:
        raise DriftInputError(f"expected a 1-D sample, got shape {array.shape}", field=field)
    return list(array)


def matrix_sample(values: Any, field: str, *, min_rows: int) -> FloatArray:
    """A 2-D float64 ``(rows, dims)`` copy; 1-D input is an error (one row, or many scalars?)."""
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DriftInputError("values are not numbers", field=field) from exc
    if array.ndim != 2:
        raise DriftInputError(
            f"expected a 2-D (rows, dims) matrix, got shape {array.shape}", field=field
        )
    check_rows(array.shape[0], field, min_rows)
    if array.shape[1] == 0:
        raise DriftInputError("rows have no dimensions", field=field)
    bad_rows = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if bad_rows.size:
        raise DriftInputError(
            "NaN or infinite value",
            field=field,
            row=int(bad_rows[0]),
            hint=f"{bad_rows.size} row(s) with non-finite values",
        )
    return array


def same_dims(reference: FloatArray, current: FloatArray) -> None:
    if reference.shape[1] != current.shape[1]:
        raise DriftInputError(
            f"{current.shape[1]} dimensions, the reference has {reference.shape[1]}",
            field="current",
            hint="both samples must come from the same embedder",
        )
