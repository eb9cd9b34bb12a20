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
proximal step.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import expit, log_expit

from ..errors import ConvergenceError, ValidationError
from ._common import (
    FixedPointReport,
    ReplicaPoint,
    SolverOptions,
    check_point,
    teacher_mean_nodes,
)

__all__ = ["solve_ising"]

log = logging.getLogger(__name__)

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


def _solve_one(
    alpha: float,
    lam: float,
    beta: float,
    rho: float,
    kappa: float,
    delta: float,
    s_star: float,
    options: SolverOptions,
    n_nodes: int,
    start: dict[str, Any] | None,
) -> dict[str, Any]:
    x = np.array(start["x"]) if start else np.array([0.05 * rho, 0.05 * rho, 1.0])
    bias = float(start["bias"]) if start else 0.0
    d = options.damping
    prev = np.inf
    residual = np.inf
    converged = False
    it = 0
    ch: dict[str, float] = {}
    for it in range(1, options.max_iter + 1):  # noqa: B007 (it is reported after the loop)
        ch = _channel(x, bias, s_star, alpha, beta, rho, kappa, delta, n_nodes)
        vn = 1.0 / (lam + ch["vh"])
        xn = np.array([rho * ch["mh"] * vn, (rho * ch["mh"] ** 2 + ch["qh"]) * vn**2, vn])
        step_b = -ch["bg"] / ch["bj"] if delta != 0 else 0.0
        scale = np.maximum(np.maximum(np.abs(x), np.abs(xn)), 1e-10)
        residual = float(max(np.max(np.abs(xn - x) / scale), abs(step_b) / (1 + abs(bias))))
        if not np.isfinite(residual) or xn[1] > 1e8:
            break
        if residual < options.tol:
            converged = True
            break
        d = max(0.5 * d, options.min_damping) if residual > prev else min(1.05 * d, options.damping)
        prev = residual
        x = (1 - d) * x + d * xn
        bias += d * step_b
    return {"x": x, "bias": bias, "ch": ch, "it": it, "res": residual, "conv": converged}


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
    if delta != 0 and teacher_mean is None:
        nodes, weights = teacher_mean_nodes(rho, options.teacher_mean_nodes)
    else:
        nodes = np.array([0.0 if teacher_mean is None else float(teacher_mean)])
        weights = np.ones(1)
    sols: list[dict[str, Any]] = []
    for s_star in nodes:
        sols.append(
            _solve_one(
                alpha,
                lam,
                beta,
                rho,
                kappa,
                delta,
                float(s_star),
                options,
                n_nodes,
                sols[-1] if sols else None,
            )
        )
    # Optimal loss and Bayes error: 1D integrals over g* ~ N(0, rho).
    xs, ws = _gh(n_nodes)
    ent, bayes = [], []
    for s_star in nodes:
        t = beta * (kappa * np.sqrt(rho) * xs + delta * s_star)
        p = expit(t)
        ent.append(float(ws @ -(p * log_expit(t) + (1 - p) * log_expit(-t))))
        bayes.append(float(ws @ np.minimum(p, 1 - p)))

    def avg(vals: list[float]) -> float:
        return float(np.dot(weights, vals))

    m = avg([s["x"][0] for s in sols])
    qq = avg([s["x"][1] for s in sols])
    eps_g = avg([s["ch"]["eps_g"] for s in sols])
    eps_opt = avg(ent)
    converged = all(s["conv"] for s in sols)
    order: dict[str, Any] = {
        "m": m,
        "q": qq,
        "V": avg([s["x"][2] for s in sols]),
        "mh": avg([s["ch"]["mh"] for s in sols]),
        "qh": avg([s["ch"]["qh"] for s in sols]),
        "Vh": avg([s["ch"]["vh"] for s in sols]),
    }
    if delta != 0:
        order["bias_rms" if teacher_mean is None else "bias"] = (
            float(np.sqrt(avg([s["bias"] ** 2 for s in sols])))
            if teacher_mean is None
            else float(sols[0]["bias"])
        )
    report = FixedPointReport(
        iterations=int(sum(s["it"] for s in sols)),
        residual=float(max(s["res"] for s in sols)),
        converged=converged,
        integration="gauss-hermite",
        n_nodes=n_nodes**2,
        message="converged" if converged else "not converged",
    )
    if not converged:
        if options.strict:
            raise ConvergenceError(f"scalar Ising fixed point not converged at alpha={alpha}")
        log.warning("scalar Ising fixed point not converged at alpha=%g lam=%g", alpha, lam)
    return ReplicaPoint(
        alpha=float(alpha),
        lam=float(lam),
        eps_g=eps_g,
        eps_opt=eps_opt,
        kl=eps_g - eps_opt,
        coupling_error=qq - 2 * beta * m + beta**2 * rho,
        class_error=avg([s["ch"]["cls"] for s in sols]),
        class_error_opt=avg(bayes),
        order=order,
        report=report,
    )
