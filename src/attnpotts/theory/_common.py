"""Shared pieces of the replica solvers: options, reports, results, integration set-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from ..errors import ValidationError
from ._channel import softmax
from ._gauss import GaussRule, gauss_hermite, randomized_qmc

__all__ = ["FixedPointReport", "ReplicaPoint", "SolverOptions", "relative_error"]

Integration = Literal["auto", "gauss-hermite", "qmc"]

#: Largest dimension of the student field integrated with tensor-product Gauss-Hermite in "auto".
GH_MAX_DIM = 2


@dataclass(frozen=True)
class SolverOptions:
    """Numerical options of the fixed-point solvers.

    Attributes:
        tol: stop when the largest relative change of an order parameter in one (undamped)
            iteration is below ``tol``.
        max_iter: iteration cap; a point that does not converge is returned with
            ``report.converged = False`` (``strict=True`` raises instead).
        damping: initial weight of the new iterate (``x <- (1 - d) x + d F(x)``); halved (down to
            ``min_damping``) whenever the residual grows.
        anderson: memory of Anderson acceleration of the factored solver (0: plain damped
            iteration); it falls back to the damped step whenever the mixed iterate is invalid
            and restarts when the residual grows.
        integration: ``"gauss-hermite"`` (tensor product), ``"qmc"`` (randomized Sobol', error
            from the spread of the randomizations) or ``"auto"`` (Gauss-Hermite when the field
            has dimension <= 2, QMC above).
        gh_nodes: Gauss-Hermite nodes per dimension for the student field (``None``: 48 in 1D,
            24 in 2D, 8 above); the teacher's noise gets half as many per axis in 2D and above.
        qmc_points: Sobol' points of the student field per randomization (a power of two).
        qmc_eta_points: Sobol' points of the teacher's conditional noise per randomization
            (each randomization has its own set, so the error estimate covers both integrals).
        qmc_randomizations: independent scrambles (>= 2 gives an error estimate).
        integration_rtol: largest accepted relative integration error (estimated) of the order
            parameters and of ``eps_g``; a point above it is reported as not converged. This is
            the precision the solver claims (``report.precision``).
        teacher_mean_nodes: Gauss-Hermite nodes of the average over the teacher's mean order
            parameter ``S* ~ N(0, rho)`` (used only when ``Ucol`` has unequal row sums).
        error_estimate: estimate the integration error at the fixed point (Gauss-Hermite:
            against a rule with 1.5 times as many nodes per axis; QMC: spread of the scrambles).
        seed: seed of the QMC scrambles (the solver is deterministic given it).
        strict: raise :class:`~attnpotts.errors.ConvergenceError` on non-convergence.
    """

    tol: float = 1e-7
    max_iter: int = 3000
    damping: float = 0.7
    min_damping: float = 0.02
    anderson: int = 4
    integration: Integration = "auto"
    gh_nodes: int | None = None
    qmc_points: int = 256
    qmc_eta_points: int = 512
    integration_rtol: float = 5e-3
    qmc_randomizations: int = 8
    teacher_mean_nodes: int = 9
    error_estimate: bool = True
    seed: int = 0
    strict: bool = False

    def __post_init__(self) -> None:
        if not (0 < self.tol < 1):
            raise ValidationError(f"tol must be in (0, 1), got {self.tol}")
        if self.max_iter < 1:
            raise ValidationError(f"max_iter must be >= 1, got {self.max_iter}")
        if not (0 < self.min_damping <= self.damping <= 1):
            raise ValidationError(
                f"need 0 < min_damping <= damping <= 1, got {self.min_damping}, {self.damping}"
            )
        if self.anderson < 0:
            raise ValidationError(f"anderson must be >= 0 (0 disables it), got {self.anderson}")
        if self.integration not in ("auto", "gauss-hermite", "qmc"):
            raise ValidationError(
                f"integration must be 'auto', 'gauss-hermite' or 'qmc', got {self.integration!r}"
            )
        if self.gh_nodes is not None and self.gh_nodes < 2:
            raise ValidationError(f"gh_nodes must be >= 2, got {self.gh_nodes}")
        if self.qmc_points < 16 or self.qmc_points & (self.qmc_points - 1):
            raise ValidationError(f"qmc_points must be a power of two >= 16, got {self.qmc_points}")
        if self.qmc_eta_points < 2 or self.qmc_eta_points & (self.qmc_eta_points - 1):
            raise ValidationError(
                f"qmc_eta_points must be a power of two >= 2, got {self.qmc_eta_points}"
            )
        if self.qmc_randomizations < 1:
            raise ValidationError(f"qmc_randomizations must be >= 1, got {self.qmc_randomizations}")
        if not (0 < self.integration_rtol < 1):
            raise ValidationError(
                f"integration_rtol must be in (0, 1), got {self.integration_rtol}"
            )
        if self.teacher_mean_nodes < 1:
            raise ValidationError(f"teacher_mean_nodes must be >= 1, got {self.teacher_mean_nodes}")


@dataclass
class FixedPointReport:
    """How the fixed point was found.

    Attributes:
        iterations: iterations used (summed over teacher-mean nodes when averaged).
        residual: largest relative change of an order parameter in the last undamped step.
        converged: ``residual < tol`` (and all numbers finite).
        integration: ``"gauss-hermite"`` or ``"qmc"``, with ``n_nodes`` the size of the rule.
        integration_error: estimated absolute integration error of each reported quantity
            (``nan`` where not estimated).
        precision: the relative precision the solver claims for the order parameters and
            ``eps_g`` (``options.integration_rtol``; the fixed-point tolerance is far below it).
        relative_integration_error: the largest estimated relative integration error of
            ``m``, ``q``, ``V`` and ``eps_g``; ``converged`` requires it below ``precision``.
        message: why the iteration stopped.
    """

    iterations: int
    residual: float
    converged: bool
    integration: str
    n_nodes: int
    integration_error: dict[str, float] = field(default_factory=dict)
    message: str = ""
    precision: float = float("nan")
    relative_integration_error: float = float("nan")


@dataclass
class ReplicaPoint:
    """One solved point ``(alpha, lambda)`` of a replica theory.

    Attributes:
        alpha, lam: samples per site and L2 strength.
        eps_g: generalization error, the test cross-entropy (nats per sample).
        eps_opt: the optimal loss, the teacher's conditional entropy ``E H(P*(.|x))``.
        kl: ``eps_g - eps_opt`` (mean Kullback-Leibler divergence teacher -> student).
        coupling_error: squared distance of the student's couplings from ``beta`` times the
            teacher's, per site (factored: ``q_ - 2 beta m + beta^2 rho``).
        class_error: probability that the student's most likely colour is not the label.
        class_error_opt: the same for the teacher's own most likely colour (Bayes error).
        order: order parameters and conjugates (scalars; matrices for the full student as lists).
        report: the convergence report.
    """

    alpha: float
    lam: float
    eps_g: float
    eps_opt: float
    kl: float
    coupling_error: float
    class_error: float
    class_error_opt: float
    order: dict[str, Any]
    report: FixedPointReport
    #: Internal solver state (iterates, proximal points) used to warm-start the next point.
    state: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-friendly record."""
        rec: dict[str, Any] = {
            "alpha": self.alpha,
            "lambda": self.lam,
            "eps_g": self.eps_g,
            "eps_opt": self.eps_opt,
            "kl": self.kl,
            "coupling_error": self.coupling_error,
            "class_error": self.class_error,
            "class_error_opt": self.class_error_opt,
        }
        rec.update(self.order)
        rec.update(
            {
                "iterations": self.report.iterations,
                "residual": self.report.residual,
                "converged": self.report.converged,
                "integration": self.report.integration,
                "integration_error": dict(self.report.integration_error),
            }
        )
        return rec


def relative_error(errors: dict[str, float], values: dict[str, float]) -> float:
    """Largest ``errors[k] / |values[k]|`` over ``m``, ``q``, ``V``, ``eps_g`` (nan if none)."""
    rel = [errors[k] / max(abs(values[k]), 1e-12) for k in ("m", "q", "V", "eps_g") if k in errors]
    return float(max(rel)) if rel else float("nan")


def check_point(alpha: float, lam: float) -> None:
    """Validate ``alpha`` and ``lam``."""
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValidationError(f"alpha must be a positive number, got {alpha}")
    if not (np.isfinite(lam) and lam >= 0):
        raise ValidationError(f"lam must be a non-negative number, got {lam}")


def build_rules(
    dim: int, options: SolverOptions, *, fine: bool = False
) -> tuple[GaussRule, GaussRule]:
    """Rules for ``xi`` (student field) and ``eta`` (teacher noise) in ``dim`` dimensions.

    ``fine=True`` gives the rule used for the error estimate of a Gauss-Hermite solve.
    """
    kind = options.integration
    if kind == "auto":
        kind = "gauss-hermite" if dim <= GH_MAX_DIM else "qmc"
    if kind == "gauss-hermite":
        n = options.gh_nodes or {1: 48, 2: 24}.get(dim, 8)
        # In 2D and above the teacher's noise gets half the nodes per axis: its integrand, a
        # softmax average, is smoother than the proximal-point integrand of the student field.
        n_eta = n if dim == 1 else max(n // 2, 4)
        if fine:
            n, n_eta = n + max(n // 2, 2), n_eta + max(n_eta // 2, 2)
        return gauss_hermite(dim, n), gauss_hermite(dim, n_eta)
    xi = randomized_qmc(dim, options.qmc_points, options.qmc_randomizations, options.seed)
    eta = randomized_qmc(
        dim, options.qmc_eta_points, options.qmc_randomizations, options.seed + 7919
    )
    return xi, eta


def teacher_entropy(
    lt: np.ndarray, rho_mat: np.ndarray, ct: np.ndarray, beta: float, options: SolverOptions
) -> tuple[float, float]:
    """Optimal loss ``E H(softmax(beta (lt z* + ct)))`` and Bayes error, ``z* ~ N(0, rho_mat)``."""
    dim = lt.shape[1]
    if dim <= GH_MAX_DIM:
        rule = gauss_hermite(dim, 64 if dim == 1 else 40)
    else:
        rule = randomized_qmc(dim, 2**14, 4, options.seed + 1)
    from ._channel import psd_sqrt

    z = rule.nodes @ psd_sqrt(rho_mat).T
    p = softmax(beta * (z @ lt.T + ct))
    ent = -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=1)
    return float(rule.weights @ ent), float(rule.weights @ (1.0 - p.max(axis=1)))


def teacher_mean_nodes(rho: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights of ``S* ~ N(0, rho)``."""
    x, w = hermegauss(n)
    return np.sqrt(rho) * x, w / w.sum()
