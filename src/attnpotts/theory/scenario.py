"""The model scenario of the replica theory (docs/theory.md) and its derived quantities.

One masked site of a generalized Potts model with ``N`` other sites whose spins are i.i.d. uniform
over ``q`` colours. The teacher's attention row is ``w*_j ~ N(0, rho)``, its couplings
``w*_j / sqrt(N)`` and its value matrix ``Ucol``; the label is drawn from
``softmax(beta * z*)`` with ``z*_a = sum_j w*_j Ucol[a, s_j] / sqrt(N)``. The factored student
learns a row ``a`` with ``z_a = sum_j a_j Ucol[a, s_j] / sqrt(N)``.

Per site the feature vector is ``Phi_j = Ucol[:, s_j]`` with mean ``mu = Ucol 1 / q`` and centred
covariance ``Omega = Ucol Pi Ucol^T / q`` (``Pi = I - 1 1^T / q``). Softmax ignores shifts along
``1``, so only ``Pi Omega Pi`` and ``Pi mu`` matter. If the rows of ``Ucol`` have equal sums,
``Pi mu = 0``; otherwise the logits carry the term ``S (Pi mu)`` with ``S = sum_j a_j / sqrt(N)``,
an extra order parameter (for the teacher, ``S* ~ N(0, rho)``, a quenched random number).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ShapeError, ValidationError

__all__ = ["Scenario", "centering_basis", "make_ucol"]

#: Eigenvalues of ``Pi Omega Pi`` below this fraction of the largest are treated as zero.
RANK_RTOL = 1e-10


def centering_basis(q: int) -> np.ndarray:
    """The orthonormal basis ``P`` of ``{x : sum(x) = 0}`` in ``R^q`` (shape ``(q, q - 1)``):
    the Helmert contrasts, column ``k`` = ``(1, ..., 1, -(k + 1), 0, ..., 0) / sqrt((k + 1) (k + 2))``
    with ``k + 1`` ones.

    Written out rather than taken from a factorisation: the subspace is degenerate, so an SVD or
    eigendecomposition returns whichever basis the LAPACK build picks (two numpy builds gave two
    different ones), and the full student's quadrature nodes and reported matrices live in it.
    """
    if q < 1:
        raise ValidationError(f"need q >= 1 colours, got {q}")
    p = np.zeros((q, q - 1))
    for k in range(q - 1):
        p[: k + 1, k] = 1.0
        p[k + 1, k] = -(k + 1.0)
        p[:, k] /= np.sqrt((k + 1.0) * (k + 2.0))
    return p


def make_ucol(kind: str, q: int, seed: int = 0) -> np.ndarray:
    """A symmetric value matrix ``Ucol`` of shape ``(q, q)``.

    ``kind``: ``"identity"`` (standard Potts) or ``"gaussian"`` (symmetric, entries ``N(0, 1)``
    off the diagonal and ``N(0, 2)`` on it, drawn with ``seed``).
    """
    if q < 2:
        raise ValidationError(f"need q >= 2 colours, got {q}")
    if kind == "identity":
        return np.eye(q)
    if kind == "gaussian":
        g = np.random.default_rng(seed).normal(size=(q, q))
        return (g + g.T) / np.sqrt(2.0)
    raise ValidationError(f"unknown Ucol kind {kind!r}; use 'identity', 'gaussian' or a .npy file")


@dataclass(frozen=True)
class Scenario:
    """Teacher of the replica scenario: value matrix, inverse temperature and prior variance.

    Args:
        ucol: ``(q, q)`` symmetric value (colour) matrix of teacher and student.
        beta: inverse temperature of the teacher's labels (> 0).
        rho: variance of the teacher's attention weights ``w*_j`` (> 0).

    Derived attributes (read-only): ``q``; ``readout`` ``(q, r)`` with
    ``readout @ readout.T = Pi Omega Pi``; ``mean_dir`` ``(q,)`` = ``Pi mu``; ``has_mean``.
    """

    ucol: np.ndarray
    beta: float
    rho: float = 1.0
    readout: np.ndarray = field(init=False, repr=False, compare=False)
    mean_dir: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        u = np.asarray(self.ucol, dtype=np.float64)
        if u.ndim != 2 or u.shape[0] != u.shape[1] or u.shape[0] < 2:
            raise ShapeError(f"ucol must be a square (q, q) matrix with q >= 2, got {u.shape}")
        if not np.all(np.isfinite(u)):
            raise ValidationError("ucol contains NaN or inf")
        if not np.allclose(u, u.T, atol=1e-12 * max(1.0, np.abs(u).max())):
            raise ValidationError("ucol must be symmetric; pass (U + U.T) / 2")
        if not (np.isfinite(self.beta) and self.beta > 0):
            raise ValidationError(f"beta must be a positive number, got {self.beta}")
        if not (np.isfinite(self.rho) and self.rho > 0):
            raise ValidationError(f"rho must be a positive number, got {self.rho}")
        object.__setattr__(self, "ucol", u)
        q = u.shape[0]
        pi = np.eye(q) - 1.0 / q
        omega_eff = pi @ (u @ pi @ u.T / q) @ pi
        lam, vec = np.linalg.eigh(0.5 * (omega_eff + omega_eff.T))
        # Relative to the largest eigenvalue, and to |Ucol|^2 so that round-off is not signal.
        keep = lam > RANK_RTOL * max(lam.max(), 1e-2 * np.abs(u).max() ** 2 / q)
        if not keep.any():
            raise ValidationError(
                "Ucol gives logits that do not depend on the spins (Pi Ucol Pi = 0); "
                "choose a Ucol with a non-constant part"
            )
        if keep.sum() == q - 1:
            # Full rank on the centred subspace: the factor P M^(1/2) in the basis P of
            # centering_basis, with M^(1/2) the unique PSD root, so that the quadrature nodes do
            # not depend on which eigenvectors LAPACK returns for repeated eigenvalues (Ucol = I
            # has q - 1 equal ones; the channel's integrals are not rotation invariant).
            basis = centering_basis(q)
            m_lam, m_vec = np.linalg.eigh(basis.T @ (0.5 * (omega_eff + omega_eff.T)) @ basis)
            root = (m_vec * np.sqrt(np.clip(m_lam, 0.0, None))) @ m_vec.T
            object.__setattr__(self, "readout", basis @ root)
        else:  # rank-deficient: the eigenvectors of the kept eigenvalues
            object.__setattr__(self, "readout", vec[:, keep] * np.sqrt(lam[keep]))
        mu = pi @ u.sum(axis=1) / q
        scale = np.sqrt(lam.max())
        if np.linalg.norm(mu) < 1e-12 * max(scale, 1e-300):
            mu = np.zeros(q)
        object.__setattr__(self, "mean_dir", mu)

    @property
    def q(self) -> int:
        """Number of colours."""
        return int(self.ucol.shape[0])

    @property
    def rank(self) -> int:
        """Dimension ``r`` of the fluctuating part of the logits."""
        return int(self.readout.shape[1])

    @property
    def has_mean(self) -> bool:
        """Whether the rows of ``Ucol`` have unequal sums (the mean order parameter is needed)."""
        return bool(np.any(self.mean_dir != 0))

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly description."""
        return {"ucol": self.ucol.tolist(), "beta": self.beta, "rho": self.rho, "q": self.q}
