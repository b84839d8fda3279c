"""``champion`` moves only for a better model, and can always move back.

The challenger is compared with the champion on the same held-out rows (the current dataset's
test split) by a paired bootstrap of the difference in Pearson r: resample the rows, recompute
both models' r on the same resample, take the 95 % interval of the difference and the one-sided
p-value (the share of resamples where the challenger is not better). It is promoted only when
the interval lies above zero (p < alpha), and only with an approver's name; the evidence and the
approver are written to the version (audit tag) and the log. ``rollback`` restores the champion
the current one replaced (recorded on it as ``previous_champion``).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from emily.errors import EmilyError
from emily.mlops.appraisal.baselines import pearson
from emily.mlops.registry import (
    CHALLENGER,
    CHAMPION,
    REQUIRED_TAGS,
    VersionInfo,
    audit,
    by_alias,
    get_version,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient


class PromotionRefusedError(EmilyError):
    """The challenger may not replace the champion (not better, untested, or no approver)."""

    exit_code = 3


@dataclass(frozen=True)
class Comparison:
    champion: int
    challenger: int
    rows: int
    champion_r: float
    challenger_r: float
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    alpha: float
    samples: int

    @property
    def better(self) -> bool:
        return self.ci_low > 0.0 and self.p_value < self.alpha

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "better": self.better}

    def sentence(self) -> str:
        return (
            f"challenger v{self.challenger} r={self.challenger_r:.4f} vs champion "
            f"v{self.champion} r={self.champion_r:.4f} on {self.rows} held-out rows: "
            f"Δr = {self.effect:+.4f}, 95 % CI [{self.ci_low:+.4f}, {self.ci_high:+.4f}], "
            f"p = {self.p_value:.4f} (paired bootstrap, {self.samples} resamples)"
        )


def paired_bootstrap(
    champion: npt.NDArray[np.floating],
    challenger: npt.NDArray[np.floating],
    truth: npt.NDArray[np.floating],
    *,
    samples: int,
    alpha: float,
    seed: int = 0,
) -> tuple[float, float, float, float]:
    """``(effect, ci_low, ci_high, p_value)`` of r(challenger) - r(champion)."""
    a, b, y = (np.asarray(v, dtype=np.float64) for v in (champion, challenger, truth))
    rng = np.random.default_rng(seed)
    n = len(y)
    diffs = np.empty(samples)
    for i in range(samples):
        idx = rng.integers(0, n, n)
        diffs[i] = pearson(b[idx], y[idx]) - pearson(a[idx], y[idx])
    effect = pearson(b, y) - pearson(a, y)
    low, high = np.percentile(diffs, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    p_value = (1 + int(np.sum(diffs <= 0))) / (1 + samples)
    return float(effect), float(low), float(high), float(p_value)


def compare(
    champion: VersionInfo,
    challenger: VersionInfo,
    champion_pred: npt.NDArray[np.floating],
    challenger_pred: npt.NDArray[np.floating],
    truth: npt.NDArray[np.floating],
    *,
    samples: int,
    alpha: float,
) -> Comparison:
    effect, low, high, p = paired_bootstrap(
        champion_pred, challenger_pred, truth, samples=samples, alpha=alpha
    )
    return Comparison(
        champion=champion.version,
        challenger=challenger.version,
        rows=len(truth),
        champion_r=pearson(champion_pred, truth),
        challenger_r=pearson(challenger_pred, truth),
        effect=effect,
        ci_low=low,
        ci_high=high,
        p_value=p,
        alpha=alpha,
        samples=samples,
    )


def check_promotable(challenger: VersionInfo | None, champion: VersionInfo | None) -> VersionInfo:
    if challenger is None:
        raise PromotionRefusedError("there is no challenger to promote", field="challenger")
    missing = [t for t in REQUIRED_TAGS if t not in challenger.tags]
    if missing or challenger.tags.get("validation_status") != "passed":
        raise PromotionRefusedError(
            f"challenger v{challenger.version} is untested "
            f"(missing {', '.join(missing) or 'a passed validation'})",
            field="challenger",
        )
    if champion is not None and champion.version == challenger.version:
        raise PromotionRefusedError(
            f"v{challenger.version} is already the champion", field="challenger"
        )
    return challenger


def apply_promotion(
    client: MlflowClient,
    name: str,
    champion: VersionInfo | None,
    challenger: VersionInfo,
    *,
    approved_by: str,
    comparison: Comparison | None,
) -> dict[str, Any]:
    """Move ``champion`` (one atomic alias call), then record it; the challenger alias is
    cleared last (a failure there leaves a consistent registry: both aliases on one version)."""
    if not approved_by.strip():
        raise PromotionRefusedError("a promotion needs an approver", field="approved_by")
    if champion is not None and (comparison is None or not comparison.better):
        detail = comparison.sentence() if comparison else "no comparison was made"
        raise PromotionRefusedError(f"not promoted: {detail}", field="challenger")
    if champion is not None:
        client.set_model_version_tag(
            name, str(challenger.version), "previous_champion", str(champion.version)
        )
    client.set_registered_model_alias(name, CHAMPION, str(challenger.version))
    record = audit(
        client,
        name,
        challenger.version,
        action="promote",
        alias=CHAMPION,
        previous=champion.version if champion else None,
        by=approved_by,
        evidence=comparison.as_dict() if comparison else {},
    )
    with contextlib.suppress(Exception):  # the promotion is complete and recorded already
        client.delete_registered_model_alias(name, CHALLENGER)
    return record


def rollback(client: MlflowClient, name: str, *, approved_by: str, reason: str) -> dict[str, Any]:
    champion = by_alias(client, name, CHAMPION)
    if champion is None:
        raise PromotionRefusedError("there is no champion to roll back", field="champion")
    previous = champion.tags.get("previous_champion")
    if previous is None:
        raise PromotionRefusedError(
            f"champion v{champion.version} replaced no earlier champion", field="champion"
        )
    target = get_version(client, name, int(previous))
    client.set_registered_model_alias(name, CHAMPION, str(target.version))
    client.set_model_version_tag(name, str(champion.version), "rolled_back", reason)
    return audit(
        client,
        name,
        target.version,
        action="rollback",
        alias=CHAMPION,
        previous=champion.version,
        by=approved_by,
        evidence={"reason": reason},
    )


def reset_champion(
    client: MlflowClient, name: str, version: int, *, by: str, reason: str
) -> dict[str, Any] | None:
    """Put ``champion`` on ``version`` and clear ``challenger`` (a scenario starting over, such
    as the demo's second act); ``None`` when the aliases were like that already."""
    champion = by_alias(client, name, CHAMPION)
    record = None
    if champion is None or champion.version != version:
        client.set_registered_model_alias(name, CHAMPION, str(version))
        record = audit(
            client,
            name,
            version,
            action="reset",
            alias=CHAMPION,
            previous=champion.version if champion else None,
            by=by,
            evidence={"reason": reason},
        )
    if by_alias(client, name, CHALLENGER) is not None:
        client.delete_registered_model_alias(name, CHALLENGER)
    return record
