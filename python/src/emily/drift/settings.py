"""Settings of the drift detectors and of the live monitor (defaults from the calibration in
docs/bench/drift-calibration.json; docs/adr/0002-drift-detectors.md explains them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator


class DriftSettings(BaseModel):
    """Significance, multiple-testing correction, PSI cut-offs and the sliding-window monitor."""

    alpha: float = Field(
        default=0.05, gt=0, lt=0.5, description="Significance level of reports (DVC, features)."
    )
    monitor_alpha: float = Field(
        default=0.01,
        gt=0,
        lt=0.5,
        description="Live monitor: level of each window check (repeated checks: stricter).",
    )
    correction: Literal["holm", "bonferroni", "none"] = Field(
        default="holm", description="Family-wise correction across features in one report."
    )
    psi_bins: int = Field(
        default=10, ge=2, le=100, description="PSI: equal-frequency bins on the reference."
    )
    psi_moderate: float = Field(default=0.1, gt=0, description="PSI at or above: moderate shift.")
    psi_major: float = Field(
        default=0.25, gt=0, description="PSI at or above: major shift (the drift decision)."
    )
    mmd_permutations: int = Field(
        default=200, ge=19, le=10_000, description="MMD permutation p-value: relabellings."
    )
    seed: int = Field(default=0, ge=0, description="Seed of the permutations (reproducible).")
    reference_size: int = Field(
        default=200, ge=10, description="Monitor: episodes in the reference sample."
    )
    window: int = Field(default=50, ge=5, description="Monitor: episodes in the sliding window.")
    stride: int = Field(default=5, ge=1, description="Monitor: check every N new episodes.")
    patience: int = Field(
        default=2, ge=1, description="Monitor: consecutive drifting checks that raise an alarm."
    )

    @model_validator(mode="after")
    def _psi_order(self) -> DriftSettings:
        if self.psi_moderate > self.psi_major:
            raise ValueError("psi_moderate must not exceed psi_major")
        return self
