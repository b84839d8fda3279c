"""Typed results of the detectors: one :class:`DriftResult` per test, one :class:`DriftReport` per
multi-feature comparison. Both are frozen pydantic models, so they dump to JSON as they are
(``model_dump(mode="json")``) for the DVC ``drift`` stage, MLflow and alert events."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TestName = Literal["ks", "psi", "chi2", "mmd", "c2st"]
Correction = Literal["holm", "bonferroni", "none"]


class DriftResult(BaseModel):
    """One two-sample test of ``current`` against ``reference``.

    Tests decided by a p-value carry ``p_value`` and ``alpha`` (``threshold`` is ``None``);
    PSI, decided by its statistic, carries ``threshold`` (``p_value`` and ``alpha`` are ``None``).
    Inside a :class:`DriftReport`, ``adjusted_p_value`` is the p-value after the correction across
    features and ``drift`` is decided on it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    test: TestName
    feature: str
    statistic: float
    p_value: float | None = Field(default=None, ge=0.0, le=1.0)
    alpha: float | None = Field(default=None, gt=0.0, lt=1.0)
    threshold: float | None = None
    adjusted_p_value: float | None = Field(default=None, ge=0.0, le=1.0)
    drift: bool
    n_reference: int = Field(ge=1)
    n_current: int = Field(ge=1)
    details: dict[str, float | int | str] = Field(default_factory=dict)

    @classmethod
    def by_p_value(
        cls,
        *,
        test: TestName,
        feature: str,
        statistic: float,
        p_value: float,
        alpha: float,
        n_reference: int,
        n_current: int,
        details: dict[str, float | int | str] | None = None,
    ) -> DriftResult:
        """A test decided by its p-value: drift when ``p_value < alpha`` (the stored p-value is
        clamped to [0, 1], where floating-point noise may have pushed it)."""
        return cls(
            test=test,
            feature=feature,
            statistic=statistic,
            p_value=min(max(p_value, 0.0), 1.0),
            alpha=alpha,
            drift=p_value < alpha,
            n_reference=n_reference,
            n_current=n_current,
            details=details or {},
        )


class DriftReport(BaseModel):
    """Per-feature results of one comparison, corrected for testing many features at once.

    ``drift`` is true when any feature drifts after the correction (p-value tests) or passes its
    threshold (PSI); ``drifted`` lists those features in input order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = Field(gt=0.0, lt=1.0)
    correction: Correction
    results: tuple[DriftResult, ...]
    drift: bool
    drifted: tuple[str, ...]
    n_reference: int = Field(ge=1)
    n_current: int = Field(ge=1)

    def result(self, feature: str) -> DriftResult:
        """The result of one feature (KeyError when it was not tested)."""
        for item in self.results:
            if item.feature == feature:
                return item
        raise KeyError(feature)
