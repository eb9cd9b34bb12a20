"""Exact results for small Potts models by enumerating all ``q**L`` configurations.

Used as ground truth for every numerical routine: log partition function, marginals, exact
i.i.d. samples. Refuses systems with more than :data:`MAX_STATES` configurations.
"""

from __future__ import annotations

import numpy as np

from ..errors import EnumerationLimitError, ValidationError
from ..random import SeedLike, as_generator
from .entropy import conditional_entropies
from .model import PottsModel

__all__ = ["MAX_STATES", "ExactPotts", "all_states"]

#: Largest number of configurations ``q**L`` enumerated (about 2e6; 2**21 = 2097152).
MAX_STATES = 2**21


def _check_size(n_sites: int, n_states: int, limit: int) -> int:
    n = n_states**n_sites
    if n > limit:
        raise EnumerationLimitError(
            f"exact enumeration of q**L = {n_states}**{n_sites} = {n:.3g} configurations exceeds "
            f"the limit of {limit} (about 2e6); use MCMC sampling (attnpotts.sampling) instead, "
            "or a smaller system"
        )
    return n


def all_states(n_sites: int, n_states: int, *, limit: int = MAX_STATES) -> np.ndarray:
    """All configurations in lexicographic order, ``(q**L, L)`` int8 (site 0 varies slowest)."""
    n = _check_size(n_sites, n_states, limit)
    idx = np.arange(n, dtype=np.int64)
    out = np.empty((n, n_sites), dtype=np.int8)
    for i in range(n_sites - 1, -1, -1):
        out[:, i] = idx % n_states
        idx //= n_states
    return out


class ExactPotts:
    """Exact Boltzmann distribution of a small :class:`PottsModel`.

    Attributes:
        states: ``(S, L)`` all configurations, ``S = q**L``.
        energies: ``(S,)`` energies ``H(s)``.
        log_partition: ``log Z = log sum_s exp(-beta H(s))``.
        probabilities: ``(S,)`` Boltzmann probabilities.
    """

    def __init__(self, model: PottsModel, *, limit: int = MAX_STATES) -> None:
        if not isinstance(model, PottsModel):
            raise ValidationError(
                "exact enumeration needs a symmetric PottsModel; convert a ConditionalPotts "
                "with .symmetrized()"
            )
        self.model = model
        self.states = all_states(model.n_sites, model.n_states, limit=limit)
        self.energies = np.asarray(model.energy(self.states), dtype=np.float64)
        logw = -model.beta * self.energies
        top = float(logw.max())  # log-sum-exp; scipy is not imported for it (import time of every command)
        self.log_partition = top + float(np.log(np.exp(logw - top).sum()))
        self.probabilities = np.exp(logw - self.log_partition)

    def single_site_marginals(self) -> np.ndarray:
        """``(L, q)`` marginals ``P(s_i = a)``."""
        L, q = self.model.n_sites, self.model.n_states
        out = np.zeros((L, q))
        for i in range(L):
            out[i] = np.bincount(self.states[:, i], weights=self.probabilities, minlength=q)
        return out

    def pair_marginals(self) -> np.ndarray:
        """``(L, L, q, q)`` marginals ``P(s_i = a, s_j = b)`` (diagonal blocks are diag(P_i))."""
        L, q = self.model.n_sites, self.model.n_states
        out = np.zeros((L, L, q, q))
        s = self.states.astype(np.int64)
        for i in range(L):
            for j in range(L):
                out[i, j] = np.bincount(
                    s[:, i] * q + s[:, j], weights=self.probabilities, minlength=q * q
                ).reshape(q, q)
        return out

    def mean_energy(self) -> float:
        """Boltzmann average of the energy."""
        return float(self.probabilities @ self.energies)

    def conditional_entropy(self) -> float:
        """Mean over sites of ``E_s[ H(P(. | s_rest)) ]``: the optimal masked-LM loss (nats)."""
        ent = conditional_entropies(self.model, self.states)  # (S, L)
        return float(self.probabilities @ ent.mean(axis=1))

    def sample(self, n: int, seed: SeedLike = None) -> np.ndarray:
        """``n`` exact i.i.d. samples ``(n, L)`` from the Boltzmann distribution."""
        if n < 0:
            raise ValidationError(f"number of samples must be >= 0, got {n}")
        rng = as_generator(seed)
        idx = rng.choice(self.states.shape[0], size=n, p=self.probabilities)
        return self.states[idx].copy()
