"""Multi-feature reports: Holm and Bonferroni against hand computation, the family-wise error
rate they control (and what happens without), type inference, PSI outside the family,
prediction drift, JSON round trip and typed errors naming the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emily.drift.embedding import mmd_test
from emily.drift.errors import DriftInputError
from emily.drift.numeric import psi_test
from emily.drift.report import (
    adjust_p_values,
    combine,
    feature_report,
    infer_kind,
    prediction_drift,
)
from emily.drift.results import DriftReport
from tests.drift.conftest import binomial_upper


def test_holm_and_bonferroni_hand_computed() -> None:
    p = [0.01, 0.04, 0.03, 0.5]
    # Holm: sorted 0.01·4 = 0.04, 0.03·3 = 0.09, 0.04·2 = 0.08 → 0.09 (monotone), 0.5·1.
    assert adjust_p_values(p, "holm").tolist() == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert adjust_p_values(p, "bonferroni").tolist() == pytest.approx([0.04, 0.16, 0.12, 1.0])
    assert adjust_p_values(p, "none").tolist() == p
    assert adjust_p_values([], "holm").tolist() == []


def _frame(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift * 10, 10, rows),
            "score": rng.normal(0, 1, rows),
            "kind": pd.Categorical(
                rng.choice(["a", "b", "c"], rows, p=[0.5 - shift * 0.3, 0.3, 0.2 + shift * 0.3])
            ),
            "flag": rng.random(rows) < 0.3,
            "code": rng.integers(0, 4, rows),
        }
    )


def test_report_finds_the_drifting_columns() -> None:
    rng = np.random.default_rng(8)
    reference, current = _frame(rng, 600), _frame(rng, 400, shift=1.0)
    current["score"] = rng.normal(0, 1, 400)
    report = feature_report(reference, current, kinds={"code": "categorical"})
    assert report.drifted == ("age", "kind")
    assert report.drift is True
    tests = {r.feature: r.test for r in report.results}
    assert tests == {"age": "ks", "score": "ks", "kind": "chi2", "flag": "chi2", "code": "chi2"}
    assert all(r.adjusted_p_value is not None for r in report.results)
    assert all(r.adjusted_p_value >= (r.p_value or 0) for r in report.results)  # type: ignore[operator]
    assert (report.n_reference, report.n_current, report.correction) == (600, 400, "holm")
    assert report.result("age").drift and not report.result("score").drift
    with pytest.raises(KeyError):
        report.result("nope")


def test_holm_controls_the_family_wise_error_rate() -> None:
    rng = np.random.default_rng(12)
    trials, features = 200, 10
    corrected, raw = [], []
    for _ in range(trials):
        reference = pd.DataFrame(
            rng.normal(size=(80, features)), columns=[f"f{i}" for i in range(features)]
        )
        current = pd.DataFrame(rng.normal(size=(60, features)), columns=reference.columns)
        report = feature_report(reference, current)
        corrected.append(report.drift)
        raw.append(any((r.p_value or 1.0) < 0.05 for r in report.results))
    assert np.mean(corrected) <= binomial_upper(0.05, trials)
    # Uncorrected, ten tests at 5 % raise at least one false alarm far more often (≈ 40 %).
    assert np.mean(raw) > 0.2


def test_psi_stays_outside_the_family_and_combine_takes_any_results() -> None:
    rng = np.random.default_rng(3)
    embedding = mmd_test(rng.normal(size=(30, 4)), rng.normal(size=(30, 4)) + 2.0)
    stable = psi_test(rng.normal(size=2000), rng.normal(size=2000), feature="x")
    report = combine([embedding, stable], correction="bonferroni")
    assert report.result("x").adjusted_p_value is None and report.result("x").drift is False
    assert report.result("embedding").adjusted_p_value == pytest.approx(
        min(1.0, 1 * (embedding.p_value or 0))
    )
    assert report.drifted == ("embedding",)
    psi_report = feature_report(
        pd.DataFrame({"x": rng.normal(size=500)}),
        pd.DataFrame({"x": rng.normal(size=500) + 2}),
        numeric_test="psi",
    )
    assert psi_report.results[0].test == "psi" and psi_report.drift


def test_report_round_trips_through_json() -> None:
    rng = np.random.default_rng(1)
    report = feature_report(_frame(rng, 100), _frame(rng, 100), columns=["age", "kind"])
    assert [r.feature for r in report.results] == ["age", "kind"]
    again = DriftReport.model_validate_json(report.model_dump_json())
    assert again == report


def test_infer_kind() -> None:
    assert infer_kind(pd.Series([1.0, 2.0])) == "numeric"
    assert infer_kind(pd.Series([1, 2])) == "numeric"
    assert infer_kind(pd.Series([True, False])) == "categorical"
    assert infer_kind(pd.Series(["a", "b"])) == "categorical"
    assert infer_kind(pd.Series(["a", "b"], dtype="category")) == "categorical"


def test_prediction_drift_numeric_and_labels() -> None:
    rng = np.random.default_rng(2)
    scores = prediction_drift(rng.beta(2, 5, 300), rng.beta(5, 2, 300))
    assert (scores.test, scores.feature, scores.drift) == ("ks", "prediction", True)
    labels = prediction_drift(
        rng.choice(["pos", "neg"], 300), rng.choice(["pos", "neg"], 300), kind="categorical"
    )
    assert labels.test == "chi2"
    psi = prediction_drift(rng.normal(size=300), rng.normal(size=300), numeric_test="psi")
    assert psi.test == "psi" and psi.threshold == 0.25


def test_report_errors_name_the_column() -> None:
    rng = np.random.default_rng(0)
    reference, current = _frame(rng, 50), _frame(rng, 50)
    broken = current.copy()
    broken.loc[7, "age"] = np.nan
    with pytest.raises(DriftInputError) as info:
        feature_report(reference, broken)
    assert (info.value.field, info.value.row) == ("current.age", 7)
    with pytest.raises(DriftInputError) as info:
        feature_report(reference, current.drop(columns=["kind"]))
    assert info.value.field == "current.kind"
    with pytest.raises(DriftInputError) as info:
        feature_report(reference, current.iloc[:0])
    assert info.value.field == "current"
    with pytest.raises(DriftInputError) as info:
        feature_report(reference, current, kinds={"nope": "numeric"})
    assert info.value.field == "kinds"
    with pytest.raises(DriftInputError) as info:
        feature_report(reference, current, columns=[])
    assert info.value.field == "columns"
    with pytest.raises(DriftInputError) as info:
        combine([])
    assert info.value.field == "results"
