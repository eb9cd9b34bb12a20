"""Integration rules for expectations over standard Gaussian vectors (numpy only).

Two kinds of rule, both returning nodes ``(n, d)`` and weights ``(n,)`` summing to one:

* tensor-product Gauss-Hermite (deterministic; exact for polynomials of degree ``2 n - 1`` in each
  coordinate; the cost grows as ``n ** d``, so it is used for ``d <= 2``);
* randomized quasi-Monte Carlo (scrambled Sobol' points mapped through the normal quantile), in
  ``n_randomizations`` independent scrambles, whose spread gives an error estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import ndtri
from scipy.stats import qmc

from ..errors import ValidationError

__all__ = ["GaussRule", "gauss_hermite", "randomized_qmc"]


@dataclass(frozen=True)
class GaussRule:
    """A cubature rule for ``E f(X)``, ``X ~ N(0, I_d)``.

    Attributes:
        nodes: ``(n, d)`` points.
        weights: ``(n,)`` non-negative weights summing to one.
        groups: ``(n,)`` integer label of the independent randomization each node belongs to
            (all zeros for a deterministic rule); used for error estimates.
        kind: ``"gauss-hermite"`` or ``"qmc"``.
    """

    nodes: np.ndarray
    weights: np.ndarray
    groups: np.ndarray
    kind: str

    @property
    def n_groups(self) -> int:
        """Number of independent randomizations (1 for a deterministic rule)."""
        return int(self.groups.max()) + 1 if self.groups.size else 0


def gauss_hermite(dim: int, n_per_dim: int) -> GaussRule:
    """Tensor-product Gauss-Hermite rule for ``N(0, I_dim)`` with ``n_per_dim`` nodes per axis."""
    if dim < 0 or n_per_dim < 1:
        raise ValidationError(
            f"need dim >= 0 and n_per_dim >= 1, got dim={dim}, n_per_dim={n_per_dim}"
        )
    x, w = hermegauss(n_per_dim)
    w = w / w.sum()
    if dim == 0:
        return GaussRule(np.zeros((1, 0)), np.ones(1), np.zeros(1, dtype=int), "gauss-hermite")
    grids = np.meshgrid(*([x] * dim), indexing="ij")
    wgrids = np.meshgrid(*([w] * dim), indexing="ij")
    nodes = np.stack([g.ravel() for g in grids], axis=1)  # (n**dim, dim)
    weights = np.prod(np.stack([g.ravel() for g in wgrids], axis=1), axis=1)
    return GaussRule(nodes, weights, np.zeros(len(weights), dtype=int), "gauss-hermite")


def randomized_qmc(dim: int, n_points: int, n_randomizations: int, seed: int) -> GaussRule:
    """Scrambled Sobol' points mapped to ``N(0, I_dim)``, in independent randomizations.

    Args:
        dim: dimension of the Gaussian vector.
        n_points: points per randomization (rounded up to a power of two, as Sobol' needs).
        n_randomizations: number of independent scrambles (>= 2 for an error estimate).
        seed: seed of the scrambles (the rule is a deterministic function of it).
    """
    if dim < 1 or n_points < 2 or n_randomizations < 1:
        raise ValidationError(
            f"need dim >= 1, n_points >= 2, n_randomizations >= 1; got {dim}, {n_points}, "
            f"{n_randomizations}"
        )
    m = int(np.ceil(np.log2(n_points)))
    seeds = np.random.SeedSequence(seed).spawn(n_randomizations)
    blocks = []
    for s in seeds:
        u = qmc.Sobol(d=dim, scramble=True, seed=np.random.default_rng(s)).random_base2(m)
        blocks.append(ndtri(np.clip(u, 1e-16, 1 - 1e-16)))
    nodes = np.concatenate(blocks, axis=0)
    n = len(nodes)
    groups = np.repeat(np.arange(n_randomizations), 2**m)
    return GaussRule(nodes, np.full(n, 1.0 / n), groups, "qmc")
