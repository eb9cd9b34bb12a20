"""Ising case ``q = 2`` in scalar form: logistic regression with a logistic teacher (numpy only).

With two colours only the logit difference matters. For ``Ucol = [[u0, u1], [u1, u2]]`` it is
``h = kappa g + delta S`` for the student and ``beta (kappa g* + delta S*)`` for the teacher, with
``kappa = |u0 - 2 u1 + u2| / 2`` (the spread of the per-site feature difference), ``delta =
(u0 - u2) / 2`` (its mean; zero for equal row sums) and ``(g, g*)`` Gaussian with covariances
``q_``, ``m``, ``rho``. The label is ``y = +-1`` with ``P(y) = sigmoid(y beta (kappa g* + delta
S*))`` and the loss is ``log(1 + exp(-y h))``.

This is a separate implementation from :func:`attnpotts.theory.solve_factored` (used to check it):
the classic scalar equations (Aubin et al. 2020; Loureiro et al. 2021) with the teacher partition
function ``Z*(y, w, V0) = E_eta sigmoid(y beta kappa (w + sqrt(V0) eta))`` and its derivative in
``w`` (not the Stein-averaged form of the general solver), and a closed-form one-dimensional Newton
proximal step. Only the iteration skeleton (:mod:`attnpotts.theory._solver`: damping, the average
over the teacher's mean, the report) is shared; the equations and integrals are its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import expit, log_expit

from ..errors import ConvergenceError, ValidationError
from ._common import ReplicaPoint, SolverOptions, check_point
from ._solver import DIVERGENCE_Q, Iterate, NodeSolution, ScalarStudent, Step, solve_student

__all__ = ["solve_ising"]

_N_NODES = 64


def _gh(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = hermegauss(n)
    return x, w / w.sum()


def _prox(omega: np.ndarray, y: np.ndarray, v: float, kappa: float, shift: float) -> np.ndarray:
    """argmin_g (g - omega)^2 / (2 v) + log(1 + exp(-y (kappa g + shift))), elementwise."""
    g = omega.copy()
    for _ in range(100):
        s = expit(-y * (kappa * g + shift))
        grad = (g - omega) / v - y * kappa * s
        hess = 1.0 / v + kappa**2 * s * (1 - s)
        step = grad / hess
        g -= step
        if np.abs(step).max() < 1e-13 * (1 + np.abs(g).max()):
            return g
    raise ConvergenceError("scalar logistic proximal Newton did not converge")


def _channel(
    x: np.ndarray,
    bias: float,
    s_star: float,
    alpha: float,
    beta: float,
    rho: float,
    kappa: float,
    delta: float,
    n_nodes: int,
) -> dict[str, float]:
    m, qq, v = x
    xs, ws = _gh(n_nodes)
    v0 = max(rho - m**2 / qq, 0.0)
    omega = np.sqrt(qq) * xs  # (n,)
    w0 = m / np.sqrt(qq) * xs  # teacher mean given omega
    out: dict[str, float] = dict.fromkeys(("qh", "mh", "vh", "eps_g", "cls", "bg", "bj"), 0.0)
    for y in (1.0, -1.0):
        arg = y * beta * (kappa * (w0[:, None] + np.sqrt(v0) * xs[None, :]) + delta * s_star)
        zs = expit(arg) @ ws  # Z*(y, w0)
        dzs = (y * beta * kappa * expit(arg) * expit(-arg)) @ ws  # d Z* / d w0
        g = _prox(omega, np.full_like(omega, y), v, kappa, delta * bias)
        f = (g - omega) / v
        s = expit(-y * (kappa * g + delta * bias))
        curv = kappa**2 * s * (1 - s)
        out["qh"] += alpha * np.sum(ws * zs * f**2)
        out["mh"] += alpha * np.sum(ws * dzs * f)
        out["vh"] += alpha * np.sum(ws * zs * curv / (1 + v * curv))
        out["eps_g"] += -np.sum(ws * zs * log_expit(y * (kappa * omega + delta * bias)))
        pred = np.sign(kappa * omega + delta * bias)
        out["cls"] += np.sum(ws * zs * (pred != y))
        # Bias stationarity: E[d loss / dS] = E[-y delta sigmoid(-y h)] at the proximal point.
        out["bg"] += np.sum(ws * zs * (-y * delta * s))
        dg = -(kappa * delta * s * (1 - s)) / (1.0 / v + curv)  # d ghat / dS
        out["bj"] += np.sum(ws * zs * delta * s * (1 - s) * (kappa * dg + delta))
    return out


class _Ising(ScalarStudent):
    """Iterate ``{"x": (m, q_, V), "bias": S}``; damped; its own fixed Gauss-Hermite rule."""

    label = "scalar Ising"

    def __init__(
        self,
        alpha: float,
        lam: float,
        options: SolverOptions,
        *,
        beta: float,
        rho: float,
        kappa: float,
        delta: float,
        gh_nodes: int,
        teacher_mean: float | None,
    ) -> None:
        super().__init__(alpha, lam, options, None)
        self.n_nodes = gh_nodes**2
        self.beta, self.rho, self.kappa, self.delta = beta, rho, kappa, delta
        self.gh_nodes = gh_nodes
        self.teacher_mean = teacher_mean
        self.has_mean = delta != 0

    def start(self, warm: Iterate | None) -> Iterate:
        rho = self.rho
        x = np.array(warm["x"]) if warm else np.array([0.05 * rho, 0.05 * rho, 1.0])
        return {"x": x, "bias": float(warm["bias"]) if warm else 0.0}

    def step(self, x: Iterate, s_star: float) -> Step:
        old, bias = x["x"], x["bias"]
        ch = _channel(
            old,
            bias,
            s_star,
            self.alpha,
            self.beta,
            self.rho,
            self.kappa,
            self.delta,
            self.gh_nodes,
        )
        vn = 1.0 / (self.lam + ch["vh"])
        xn = np.array([self.rho * ch["mh"] * vn, (self.rho * ch["mh"] ** 2 + ch["qh"]) * vn**2, vn])
        step_b = -ch["bg"] / ch["bj"] if self.delta != 0 else 0.0
        residual = self.residual(old, xn, step_b, bias)
        divergence = ""
        if xn[1] > DIVERGENCE_Q:
            divergence = f"diverged: q_ exceeds {DIVERGENCE_Q:g} (no finite minimiser; use lam > 0)"
        target = {"x": xn, "step_b": step_b}
        return Step(ch, target, residual, bool(np.isfinite(residual)), divergence)

    def mix(self, x: Iterate, step: Step, damping: float) -> Iterate:
        d = damping
        return {
            "x": (1 - d) * x["x"] + d * step.target["x"],
            "bias": x["bias"] + d * step.target["step_b"],
        }

    def warm_state(self, sol: NodeSolution) -> Iterate:
        return {"x": sol.iterate["x"], "bias": sol.iterate["bias"]}

    def scalars(self, ch: Any) -> tuple[tuple[float, float, float], float, float]:
        return (ch["mh"], ch["qh"], ch["vh"]), ch["eps_g"], ch["cls"]

    def teacher(self, s_star: float) -> tuple[float, float]:
        """Optimal loss and Bayes error: 1D integrals over ``g* ~ N(0, rho)``."""
        xs, ws = _gh(self.gh_nodes)
        t = self.beta * (self.kappa * np.sqrt(self.rho) * xs + self.delta * s_star)
        p = expit(t)
        ent = float(ws @ -(p * log_expit(t) + (1 - p) * log_expit(-t)))
        return ent, float(ws @ np.minimum(p, 1 - p))


def solve_ising(
    alpha: float,
    lam: float,
    *,
    beta: float,
    rho: float = 1.0,
    ucol: np.ndarray | None = None,
    teacher_mean: float | None = None,
    options: SolverOptions | None = None,
    n_nodes: int = _N_NODES,
) -> ReplicaPoint:
    """Solve the ``q = 2`` scenario in scalar (logistic regression) form.

    Args:
        alpha, lam: samples per site and L2 strength.
        beta, rho: teacher inverse temperature and prior variance.
        ucol: ``(2, 2)`` symmetric value matrix (default identity).
        teacher_mean: the teacher's ``S*`` (unequal row sums only); ``None`` averages over
            ``S* ~ N(0, rho)``.
        options: tolerances and damping (the integration options are not used: this solver
            always uses ``n_nodes`` Gauss-Hermite nodes per axis).

    Returns:
        A :class:`ReplicaPoint` with the same conventions as :func:`solve_factored`.
    """
    options = options or SolverOptions()
    check_point(alpha, lam)
    u = np.eye(2) if ucol is None else np.asarray(ucol, dtype=float)
    if u.shape != (2, 2) or not np.allclose(u, u.T):
        raise ValidationError(f"ucol must be a symmetric (2, 2) matrix, got {u.shape}")
    kappa = abs(u[0, 0] - 2 * u[0, 1] + u[1, 1]) / 2
    delta = (u[0, 0] - u[1, 1]) / 2
    if kappa == 0:
        raise ValidationError("ucol has u00 - 2 u01 + u11 = 0: the logits do not depend on spins")
    student = _Ising(
        alpha,
        lam,
        options,
        beta=beta,
        rho=rho,
        kappa=kappa,
        delta=delta,
        gh_nodes=n_nodes,
        teacher_mean=teacher_mean,
    )
    return solve_student(student, has_mean=delta != 0, teacher_mean=teacher_mean, rho=rho)
