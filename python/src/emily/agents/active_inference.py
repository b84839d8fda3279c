"""Expected free energy over a small explicit discrete generative model (after Friston).

The model has hidden states ``s``, outcomes ``o`` and one-step policies ``π``:

* ``A[o, s] = p(o | s)``, the observation likelihood (columns sum to one);
* ``B[π][s', s] = p(s' | s, π)``, a transition matrix per policy (columns sum to one);
* ``C[o] = ln p(o)``, log-preferences over outcomes (normalised with a log-softmax here, so
  adding a constant to raw preferences changes nothing);
* ``D[s]``, the prior over hidden states.

For a belief ``q(s)`` a policy predicts ``q(s'|π) = B[π] q(s)`` and ``q(o|π) = A q(s'|π)``; its
expected free energy is ``G(π) = KL[q(o|π) || p(o)] + E_q(s'|π)[H[p(o|s')]]`` (risk plus
ambiguity), and policies are chosen with ``q(π) = σ(ln E(π) - γ G(π))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

EPS = 1e-16


def log_softmax(x: Array) -> Array:
    """``x - logsumexp(x)``: raw log-preferences as normalised log-probabilities."""
    x = np.asarray(x, dtype=np.float64)
    shifted = x - np.max(x)
    return np.asarray(shifted - np.log(np.sum(np.exp(shifted))), dtype=np.float64)


def softmax(x: Array, precision: float = 1.0) -> Array:
    """Probabilities proportional to ``exp(precision * x)``."""
    return np.exp(log_softmax(precision * np.asarray(x, dtype=np.float64)))


def entropy(p: Array) -> float:
    """Shannon entropy in nats (``0 ln 0 = 0``)."""
    p = np.asarray(p, dtype=np.float64)
    nz = p[p > 0]
    return float(-np.sum(nz * np.log(nz)))


def kl_divergence(q: Array, log_p: Array) -> float:
    """``KL[q || p]`` with ``p`` given as log-probabilities (zero-mass terms of ``q`` drop)."""
    q = np.asarray(q, dtype=np.float64)
    mask = q > 0
    return float(np.sum(q[mask] * (np.log(q[mask]) - np.asarray(log_p)[mask])))


@dataclass(frozen=True)
class GenerativeModel:
    """A, B, C, D of a one-step discrete POMDP, with names for readable decisions."""

    states: tuple[str, ...]
    outcomes: tuple[str, ...]
    policies: tuple[str, ...]
    A: Array
    B: Array
    C: Array
    D: Array

    def __post_init__(self) -> None:
        n_s, n_o, n_p = len(self.states), len(self.outcomes), len(self.policies)
        if self.A.shape != (n_o, n_s):
            raise ValueError(f"A must be {(n_o, n_s)}, got {self.A.shape}")
        if self.B.shape != (n_p, n_s, n_s):
            raise ValueError(f"B must be {(n_p, n_s, n_s)}, got {self.B.shape}")
        if self.C.shape != (n_o,) or self.D.shape != (n_s,):
            raise ValueError("C must have one entry per outcome and D one per state")
        if not np.allclose(self.A.sum(axis=0), 1.0) or not np.allclose(self.B.sum(axis=1), 1.0):
            raise ValueError("A and every B[π] must be column-stochastic")

    def policy_index(self, policy: str) -> int:
        return self.policies.index(policy)

    def with_preferences(self, c: Array) -> GenerativeModel:
        return GenerativeModel(
            self.states, self.outcomes, self.policies, self.A, self.B, np.asarray(c), self.D
        )


@dataclass(frozen=True)
class FreeEnergy:
    """Expected free energy of one policy and its two parts."""

    policy: str
    risk: float
    ambiguity: float
    predicted_outcomes: tuple[float, ...]

    @property
    def total(self) -> float:
        return self.risk + self.ambiguity


def infer_states(model: GenerativeModel, likelihood: Array, prior: Array | None = None) -> Array:
    """Posterior ``q(s) ∝ p(o|s) D(s)`` for a (soft) observation given as ``likelihood[s]``."""
    prior = model.D if prior is None else np.asarray(prior, dtype=np.float64)
    posterior = np.asarray(likelihood, dtype=np.float64) * prior
    total = posterior.sum()
    if total <= 0:
        return np.asarray(prior / prior.sum(), dtype=np.float64)
    return np.asarray(posterior / total, dtype=np.float64)


def predicted_outcomes(model: GenerativeModel, qs: Array, policy: int) -> tuple[Array, Array]:
    """``q(s'|π)`` and ``q(o|π)`` one step ahead."""
    qs_next = model.B[policy] @ np.asarray(qs, dtype=np.float64)
    return qs_next, model.A @ qs_next


def expected_free_energy(model: GenerativeModel, qs: Array, policy: int) -> FreeEnergy:
    """``G(π) = KL[q(o|π) || p(o|C)] + E_q(s'|π) H[p(o|s')]``."""
    qs_next, qo = predicted_outcomes(model, qs, policy)
    log_c = log_softmax(model.C)
    risk = kl_divergence(qo, log_c)
    state_entropy = np.array([entropy(model.A[:, s]) for s in range(len(model.states))])
    ambiguity = float(qs_next @ state_entropy)
    return FreeEnergy(
        policy=model.policies[policy],
        risk=max(risk, 0.0),
        ambiguity=ambiguity,
        predicted_outcomes=tuple(float(x) for x in qo),
    )


def all_free_energies(model: GenerativeModel, qs: Array) -> list[FreeEnergy]:
    return [expected_free_energy(model, qs, p) for p in range(len(model.policies))]


def policy_posterior(g: Array, precision: float = 1.0, log_prior: Array | None = None) -> Array:
    """``q(π) = σ(ln E(π) - γ G(π))``; lower free energy, higher probability."""
    g = np.asarray(g, dtype=np.float64)
    prior = np.zeros_like(g) if log_prior is None else np.asarray(log_prior, dtype=np.float64)
    return np.asarray(np.exp(log_softmax(prior - precision * g)), dtype=np.float64)
