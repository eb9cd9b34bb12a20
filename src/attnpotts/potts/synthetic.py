"""Synthetic generalized Potts models: random site and colour interaction matrices.

The paper's data model (``docs/conventions.md``) has couplings ``J[i, j, a, b] = Jsite[i, j] Ucol[a, b]``
(``K = 1``) and no fields. How the paper drew ``Jsite`` and ``Ucol`` is unknown; the library offers
(``docs/experiments.md``):

* ``Jsite``: a sparse random graph (Erdős–Rényi with a given mean degree) with Gaussian weights
  ``N(0, scale^2)`` on its edges, or dense Gaussian ``N(0, scale^2 / L)`` on every pair;
  symmetric with a zero diagonal.
* ``Ucol``: symmetric Gaussian (GOE-like: off-diagonal ``N(0, scale^2)``, diagonal
  ``N(0, 2 scale^2)``), the identity (standard Potts model), or Gaussian plus ``diagonal * I``
  (a "ferromagnetic" colour bias that lowers the diversity of sampled sequences).

**Library default** (:class:`GeneralizedPottsSpec` defaults): ``L = 20``, ``q = 20``, sparse graph of
mean degree 3 with ``N(0, 1)`` weights, symmetric Gaussian ``Ucol`` with ``scale = 1``, no fields
(the ensemble of the pilot run described in ``docs/experiments.md``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from ..errors import ValidationError
from ..random import SeedLike, as_seed_sequence
from .model import PottsModel

__all__ = [
    "GeneralizedPottsSpec",
    "dense_site_couplings",
    "ferromagnetic_colour_couplings",
    "gaussian_colour_couplings",
    "generalized_potts",
    "identity_colour_couplings",
    "sparse_site_couplings",
]

SiteKind = Literal["sparse", "dense"]
ColourKind = Literal["gaussian", "identity", "ferromagnetic"]


def _check_size(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValidationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_nonneg(name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValidationError(f"{name} must be finite and >= 0, got {value}")
    return value


def _symmetric_gaussian(n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, n)`` symmetric matrix, off-diagonal entries ``N(0, 1)``, diagonal ``N(0, 2)``."""
    g = rng.standard_normal((n, n))
    return (g + g.T) / np.sqrt(2.0)


def sparse_site_couplings(
    n_sites: int, mean_degree: float = 3.0, *, scale: float = 1.0, seed: SeedLike = None
) -> np.ndarray:
    """Sparse ``Jsite`` ``(L, L)``: Erdős–Rényi graph with edge probability ``d / (L - 1)``.

    Each of the ``L (L - 1) / 2`` pairs is an edge independently with probability
    ``mean_degree / (L - 1)`` (so a site has ``mean_degree`` partners on average) and gets weight
    ``N(0, scale^2)``. Symmetric, zero diagonal.
    """
    L = _check_size("n_sites", n_sites, 2)
    d = _check_nonneg("mean_degree", mean_degree)
    if d > L - 1:
        raise ValidationError(
            f"mean_degree must be <= L - 1 = {L - 1} (every site linked to all others), got {d}"
        )
    scale = _check_nonneg("scale", scale)
    rng = np.random.Generator(np.random.PCG64(as_seed_sequence(seed)))
    iu = np.triu_indices(L, k=1)
    edges = rng.random(iu[0].size) < d / (L - 1)
    weights = rng.standard_normal(iu[0].size) * scale
    out = np.zeros((L, L))
    out[iu] = np.where(edges, weights, 0.0)
    return out + out.T


def dense_site_couplings(n_sites: int, *, scale: float = 1.0, seed: SeedLike = None) -> np.ndarray:
    """Dense ``Jsite`` ``(L, L)``: every pair ``N(0, scale^2 / L)`` (SK-like); symmetric, zero diagonal."""
    L = _check_size("n_sites", n_sites, 2)
    scale = _check_nonneg("scale", scale)
    rng = np.random.Generator(np.random.PCG64(as_seed_sequence(seed)))
    iu = np.triu_indices(L, k=1)
    out = np.zeros((L, L))
    out[iu] = rng.standard_normal(iu[0].size) * scale / np.sqrt(L)
    return out + out.T


def gaussian_colour_couplings(
    n_states: int, *, scale: float = 1.0, seed: SeedLike = None
) -> np.ndarray:
    """Symmetric Gaussian ``Ucol`` ``(q, q)``: off-diagonal ``N(0, scale^2)``, diagonal ``N(0, 2 scale^2)``."""
    q = _check_size("n_states", n_states, 2)
    scale = _check_nonneg("scale", scale)
    rng = np.random.Generator(np.random.PCG64(as_seed_sequence(seed)))
    return _symmetric_gaussian(q, rng) * scale


def identity_colour_couplings(n_states: int) -> np.ndarray:
    """``Ucol = I`` ``(q, q)``: the standard Potts model."""
    return np.eye(_check_size("n_states", n_states, 2))


def ferromagnetic_colour_couplings(
    n_states: int, *, scale: float = 1.0, diagonal: float = 1.0, seed: SeedLike = None
) -> np.ndarray:
    """Symmetric Gaussian ``Ucol`` plus ``diagonal * I`` ``(q, q)`` (favours equal colours)."""
    diagonal = float(diagonal)
    if not np.isfinite(diagonal):
        raise ValidationError(f"diagonal must be finite, got {diagonal}")
    return gaussian_colour_couplings(n_states, scale=scale, seed=seed) + diagonal * np.eye(n_states)


@dataclass(frozen=True)
class GeneralizedPottsSpec:
    """Recipe of a random generalized Potts model (serialisable; see :func:`generalized_potts`).

    Attributes:
        n_sites: ``L``.
        n_states: ``q``.
        site: ``"sparse"`` (random graph of ``mean_degree``) or ``"dense"`` (``N(0, s^2/L)``).
        mean_degree: mean number of partners per site (sparse only).
        site_scale: standard deviation ``s`` of the site weights.
        colour: ``"gaussian"``, ``"identity"`` or ``"ferromagnetic"`` (Gaussian + diagonal).
        colour_scale: standard deviation of the Gaussian part of ``Ucol``.
        colour_diagonal: added diagonal (ferromagnetic only).
        beta: inverse temperature.
    """

    n_sites: int = 20
    n_states: int = 20
    site: SiteKind = "sparse"
    mean_degree: float = 3.0
    site_scale: float = 1.0
    colour: ColourKind = "gaussian"
    colour_scale: float = 1.0
    colour_diagonal: float = 1.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        _check_size("n_sites", self.n_sites, 2)
        _check_size("n_states", self.n_states, 2)
        if self.site not in ("sparse", "dense"):
            raise ValidationError(f"site must be 'sparse' or 'dense', got {self.site!r}")
        if self.colour not in ("gaussian", "identity", "ferromagnetic"):
            raise ValidationError(
                f"colour must be 'gaussian', 'identity' or 'ferromagnetic', got {self.colour!r}"
            )
        _check_nonneg("mean_degree", self.mean_degree)
        if self.site == "sparse" and self.mean_degree > self.n_sites - 1:
            raise ValidationError(
                f"mean_degree must be <= L - 1 = {self.n_sites - 1}, got {self.mean_degree}"
            )
        _check_nonneg("site_scale", self.site_scale)
        _check_nonneg("colour_scale", self.colour_scale)
        _check_nonneg("beta", self.beta)
        if not np.isfinite(self.colour_diagonal):
            raise ValidationError(f"colour_diagonal must be finite, got {self.colour_diagonal}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/TOML)."""
        return asdict(self)

    def build(self, seed: SeedLike = None) -> PottsModel:
        """Draw the model (see :func:`generalized_potts`)."""
        return generalized_potts(**self.to_dict(), seed=seed)


def generalized_potts(
    n_sites: int = 20,
    n_states: int = 20,
    *,
    site: SiteKind = "sparse",
    mean_degree: float = 3.0,
    site_scale: float = 1.0,
    colour: ColourKind = "gaussian",
    colour_scale: float = 1.0,
    colour_diagonal: float = 1.0,
    beta: float = 1.0,
    seed: SeedLike = None,
) -> PottsModel:
    """Random generalized Potts model ``J[i, j, a, b] = Jsite[i, j] Ucol[a, b]`` (``K = 1``, no fields).

    ``Jsite`` and ``Ucol`` come from independent child seeds of ``seed``; the returned model keeps
    them as its factors (``site_couplings``, ``colour_couplings``).
    """
    spec = GeneralizedPottsSpec(
        n_sites,
        n_states,
        site,
        mean_degree,
        site_scale,
        colour,
        colour_scale,
        colour_diagonal,
        beta,
    )
    site_seed, colour_seed = as_seed_sequence(seed).spawn(2)
    if spec.site == "sparse":
        Jsite = sparse_site_couplings(n_sites, mean_degree, scale=site_scale, seed=site_seed)
    else:
        Jsite = dense_site_couplings(n_sites, scale=site_scale, seed=site_seed)
    if spec.colour == "gaussian":
        Ucol = gaussian_colour_couplings(n_states, scale=colour_scale, seed=colour_seed)
    elif spec.colour == "identity":
        Ucol = identity_colour_couplings(n_states)
    else:
        Ucol = ferromagnetic_colour_couplings(
            n_states, scale=colour_scale, diagonal=colour_diagonal, seed=colour_seed
        )
    return PottsModel.from_factors(Jsite, Ucol, beta=beta)
