"""Global workspace: layers propose, salience decides who is heard, free energy what is done.

Each proposal's salience is ``confidence × urgency × layer weight``. The most salient proposal is
the broadcast winner; proposals within ``coalition`` of it reach the workspace, and among their
policies the one with the lowest expected free energy is chosen. Salience also serves as the
prior ``E(π)`` of the reported policy posterior.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from emily.agents.active_inference import (
    Array,
    FreeEnergy,
    GenerativeModel,
    all_free_energies,
    policy_posterior,
)
from emily.agents.state import Decision, ProposalData

LAYERS = ("instinct", "affect", "cognition")


@dataclass(frozen=True)
class Proposal:
    layer: str
    policy: str
    confidence: float
    urgency: float
    rationale: str = ""

    def salience(self, weights: dict[str, float]) -> float:
        c = min(1.0, max(0.0, self.confidence))
        u = min(1.0, max(0.0, self.urgency))
        return c * u * weights.get(self.layer, 1.0)

    def data(self) -> ProposalData:
        return ProposalData(
            layer=self.layer,
            policy=self.policy,
            confidence=self.confidence,
            urgency=self.urgency,
            rationale=self.rationale,
        )

    @classmethod
    def of(cls, data: ProposalData) -> Proposal:
        return cls(
            data["layer"], data["policy"], data["confidence"], data["urgency"], data["rationale"]
        )


@dataclass(frozen=True)
class WorkspaceDecision:
    policy: str
    layer: str
    winner: Proposal
    saliences: list[float]
    candidates: list[str]
    free_energy: dict[str, dict[str, float]]
    posterior: dict[str, float]
    predicted_outcomes: dict[str, float] = field(default_factory=dict)

    def data(self, proposals: Sequence[Proposal]) -> Decision:
        """The checkpointable form, with every proposal that was weighed."""
        return Decision(
            policy=self.policy,
            layer=self.layer,
            winner=self.winner.data(),
            saliences=list(self.saliences),
            candidates=list(self.candidates),
            free_energy={k: dict(v) for k, v in self.free_energy.items()},
            posterior=dict(self.posterior),
            predicted_outcomes=dict(self.predicted_outcomes),
            proposals=[p.data() for p in proposals],
        )


def compete(
    proposals: list[Proposal],
    model: GenerativeModel,
    qs: Array,
    weights: dict[str, float],
    precision: float = 4.0,
    coalition: float = 0.25,
) -> WorkspaceDecision:
    """Pick the broadcast winner by salience, then the policy by minimum expected free energy."""
    valid = [p for p in proposals if p.policy in model.policies]
    if not valid:
        raise ValueError("the workspace needs at least one proposal with a known policy")
    saliences = [p.salience(weights) for p in valid]
    top = int(np.argmax(saliences))
    winner = valid[top]
    floor = coalition * saliences[top]
    members = [(p, s) for p, s in zip(valid, saliences, strict=True) if s >= floor] or [
        (winner, saliences[top])
    ]
    candidates = sorted({p.policy for p, _ in members}, key=model.policies.index)
    energies: dict[str, FreeEnergy] = {
        fe.policy: fe for fe in all_free_energies(model, qs) if fe.policy in candidates
    }
    g = np.array([energies[c].total for c in candidates])
    best_salience = np.array(
        [max(s for p, s in members if p.policy == c) for c in candidates], dtype=np.float64
    )
    log_prior = np.log(np.maximum(best_salience, 1e-6) / max(best_salience.sum(), 1e-6))
    posterior = policy_posterior(g, precision, log_prior)
    chosen = candidates[int(np.argmin(g))]
    backer = max((m for m in members if m[0].policy == chosen), key=lambda m: m[1])[0]
    fe = energies[chosen]
    return WorkspaceDecision(
        policy=chosen,
        layer=backer.layer,
        winner=winner,
        saliences=[round(s, 6) for s in saliences],
        candidates=candidates,
        free_energy={
            c: {
                "risk": energies[c].risk,
                "ambiguity": energies[c].ambiguity,
                "total": energies[c].total,
            }
            for c in candidates
        },
        posterior={c: float(p) for c, p in zip(candidates, posterior, strict=True)},
        predicted_outcomes=dict(zip(model.outcomes, fe.predicted_outcomes, strict=True)),
    )
