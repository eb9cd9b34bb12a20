"""Output channel of the replica saddle point for softmax cross-entropy students (numpy only).

The local fields of one sample are ``r``-dimensional Gaussians: the student's ``omega ~ N(0, Q)``
and the teacher's ``z* | omega ~ N(M^T Q^-1 omega, Rho - M^T Q^-1 M)``. The student's logits are
``L_s z + c_s`` (``L_s``: ``(q, r)``), the teacher's ``beta * (L_t z* + c_t)`` and the label
``y ~ softmax(teacher logits)``. With ``V`` the ``(r, r)`` response matrix, the proximal point is
``zhat = argmin_z (z - omega)^T V^-1 (z - omega) / 2 + CE(y, L_s z + c_s)`` and
``f = V^-1 (zhat - omega)``. The conjugate order parameters are (Loureiro et al. 2021, Cornacchia
et al. 2023, multi-class generalized linear models):

* ``Qh = alpha E[f f^T]``,
* ``Mh = alpha E[f (z* - E[z*|omega])^T] (Rho - M^T Q^-1 M)^-1``,
* ``Vh = alpha E[V^-1 - V^-1 (V^-1 + H)^-1 V^-1]`` with ``H = L_s^T (diag p - p p^T) L_s`` at the
  proximal point (equivalently ``alpha E[V^-1 (I - (I + V H)^-1)]``).

Expectations over ``omega`` use a rule on ``xi`` (``omega = chol(Q) xi``); over ``z*`` a rule on
``eta`` (``z* = E[z*|omega] + chol(cond. cov.) eta``) that is either a shared grid (tensor product)
or one independent randomized set per randomization of ``xi``; the sum over labels is explicit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConvergenceError, ValidationError
from ._gauss import GaussRule

__all__ = ["ChannelPoint", "ChannelResult", "channel", "psd_sqrt", "softmax"]

_NEWTON_TOL = 1e-10
#: Below this gradient size Newton steps are taken in full (quadratic convergence region).
_FULL_STEP_GRAD = 1e-5
_NEWTON_MAX_ITER = 200
_MAX_HALVINGS = 40
#: xi nodes per block of the teacher average (bounds the memory of the (xi, eta, q) array).
_BLOCK = 512


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (stable)."""
    e = logits - logits.max(axis=-1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=-1, keepdims=True)
    return e


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    zmax = logits.max(axis=-1, keepdims=True)
    z = logits - zmax
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def psd_sqrt(a: np.ndarray) -> np.ndarray:
    """A factor ``C`` with ``C C^T = a`` for a symmetric positive semi-definite ``a`` (eigen-sqrt)."""
    a = 0.5 * (a + a.T)
    lam, u = np.linalg.eigh(a)
    return (u * np.sqrt(np.clip(lam, 0.0, None))) @ u.T


@dataclass
class ChannelResult:
    """Averages of the output channel at given order parameters.

    All ``(r, r)`` matrices; the scalars are per-sample averages. ``*_groups`` hold the same
    averages over each independent randomization of a QMC rule (shape ``(n_groups, ...)``).
    """

    qh: np.ndarray
    mh: np.ndarray
    vh: np.ndarray
    eps_g: float
    class_error: float
    bias_grad: np.ndarray  # (nb,) E[L_b^T (p - e_y)]
    bias_jac: np.ndarray  # (nb, nb) derivative of bias_grad with respect to the bias
    groups: dict[str, np.ndarray]
    zhat: np.ndarray  # (n_xi, q, r) proximal points, to warm-start the next call


def _prox(
    omega: np.ndarray,
    vinv: np.ndarray,
    ls: np.ndarray,
    cs: np.ndarray,
    init: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Proximal points for every node and label by damped Newton.

    Args:
        omega: ``(n, r)`` student fields.
        vinv: ``(r, r)`` inverse response matrix.
        ls: ``(q, r)`` student read-out; ``cs``: ``(q,)`` student bias logits.
        init: ``(n, q, r)`` warm start or ``None``.

    Returns:
        ``zhat (n, q, r)``, probabilities ``p (n, q, q)`` (label axis 1, colour axis 2) and the
        inverse Hessians ``(n, q, r, r)`` of the proximal objective at ``zhat``.
    """
    n, r = omega.shape
    q = ls.shape[0]
    # Flatten (node, label) pairs; Newton runs only on the pairs not yet converged.
    om = np.repeat(omega, q, axis=0)  # (n q, r)
    lab = np.tile(np.arange(q), n)  # (n q,)
    z = om.copy() if init is None else init.reshape(n * q, r).copy()
    onehot = np.eye(q)[lab]  # (n q, q)

    def objective(zz: np.ndarray, idx: np.ndarray) -> np.ndarray:
        d = zz - om[idx]
        lse = _log_softmax(zz @ ls.T + cs)
        return 0.5 * np.einsum("ik,kl,il->i", d, vinv, d) - lse[np.arange(len(idx)), lab[idx]]

    def derivatives(zz: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, ...]:
        p = softmax(zz @ ls.T + cs)  # (m, q)
        grad = (zz - om[idx]) @ vinv.T + (p - onehot[idx]) @ ls  # (m, r)
        pl = p @ ls  # (m, r)
        hess = vinv + np.einsum("ak,ia,al->ikl", ls, p, ls) - pl[:, :, None] * pl[:, None, :]
        return p, grad, hess

    active = np.arange(n * q)
    gmax = np.inf
    for _ in range(_NEWTON_MAX_ITER):
        za = z[active]
        _, grad, hess = derivatives(za, active)
        gnorm = np.abs(grad).max(axis=1)
        keep = gnorm >= _NEWTON_TOL
        active, za, grad, hess, gnorm = (
            active[keep],
            za[keep],
            grad[keep],
            hess[keep],
            gnorm[keep],
        )
        if active.size == 0:
            break
        gmax = float(gnorm.max())
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        # Armijo backtracking along the Newton direction, skipped close to the solution where
        # the full step converges quadratically.
        slope = np.einsum("ik,ik->i", grad, step)
        f0 = objective(za, active)
        small = gnorm < _FULL_STEP_GRAD
        t = np.ones(len(active))
        znew = za - step
        bad = ~(objective(znew, active) <= f0 - 1e-4 * slope) & ~small
        halvings = 0
        while bad.any() and halvings < _MAX_HALVINGS:
            t[bad] *= 0.5
            znew[bad] = za[bad] - t[bad, None] * step[bad]
            sub = active[bad]
            ok = objective(znew[bad], sub) <= f0[bad] - 1e-4 * t[bad] * slope[bad]
            bad[np.flatnonzero(bad)[ok]] = False
            halvings += 1
        z[active] = znew
    else:
        raise ConvergenceError(
            f"proximal Newton did not converge in {_NEWTON_MAX_ITER} iterations "
            f"(max gradient {gmax:.3g}); the order parameters are probably far out of range"
        )
    p, _, hess = derivatives(z, np.arange(n * q))
    return z.reshape(n, q, r), p.reshape(n, q, q), np.linalg.inv(hess).reshape(n, q, r, r)


@dataclass(frozen=True)
class ChannelPoint:
    """Where the channel is evaluated: order parameters, read-outs of both models, ``alpha``.

    Attributes:
        Q, M, Rho, V: ``(r, r)`` order parameters (``Q``, ``Rho``, ``V`` positive definite).
        ls, lt: ``(q, r)`` student and teacher read-outs; cs, ct: ``(q,)`` their bias logits.
        lb: ``(q, nb)`` directions of the student's free bias (``nb`` may be 0).
        beta: inverse temperature of the teacher; alpha: samples per dimension.
    """

    Q: np.ndarray
    M: np.ndarray
    Rho: np.ndarray
    V: np.ndarray
    ls: np.ndarray
    lt: np.ndarray
    cs: np.ndarray
    ct: np.ndarray
    lb: np.ndarray
    beta: float
    alpha: float


def channel(
    xi: GaussRule, eta: GaussRule, at: ChannelPoint, *, init: np.ndarray | None = None
) -> ChannelResult:
    """Evaluate the channel averages at ``at`` (see the module docstring).

    Args:
        xi: rule for the student field (``(n_xi, r)`` nodes).
        eta: rule for the teacher's conditional noise: one shared rule, or (randomized QMC)
            one rule per randomization of ``xi``.
        at: order parameters and read-outs (:class:`ChannelPoint`).
        init: ``(n_xi, q, r)`` warm start of the proximal points.
    """
    Q, M, Rho, V = at.Q, at.M, at.Rho, at.V
    ls, lt, cs, ct, lb = at.ls, at.lt, at.cs, at.ct, at.lb
    beta, alpha = at.beta, at.alpha
    r = Q.shape[0]
    q = ls.shape[0]
    lq = np.linalg.cholesky(Q)
    omega = xi.nodes @ lq.T  # (n_xi, r)
    qinv_m = np.linalg.solve(Q, M)  # Q^-1 M
    mean_t = omega @ qinv_m  # (n_xi, r) = (M^T Q^-1 omega)^T
    ccov = Rho - M.T @ qinv_m
    cfac = psd_sqrt(ccov)
    if eta.n_groups > 1:
        # One independent eta rule per randomization of xi, so that the spread between the
        # randomizations also measures the error of the eta integral.
        if eta.n_groups != xi.n_groups:
            raise ValidationError(
                "a randomized eta rule needs as many randomizations as the xi rule"
            )
        sets = [
            (
                np.flatnonzero(xi.groups == g),
                eta.nodes[eta.groups == g],
                eta.weights[eta.groups == g] / eta.weights[eta.groups == g].sum(),
            )
            for g in range(eta.n_groups)
        ]
    else:
        sets = [(np.arange(len(omega)), eta.nodes, eta.weights)]
    wy = np.empty((len(omega), q))  # P(y | omega)
    ty = np.empty((len(omega), q, r))  # E_eta[P*(y | omega, eta) eta]
    base = beta * (mean_t @ lt.T + ct)  # (n_xi, q) teacher logits at eta = 0
    for idx, enodes, ew in sets:
        # Teacher logits beta (lt (mean + C eta) + ct) with the colour axis first, (q, b, n_eta):
        # reductions over a short leading axis are elementwise and fast.
        shift = beta * (enodes @ (lt @ cfac).T)  # (n_eta, q)
        for start in range(0, len(idx), _BLOCK):
            sub = idx[start : start + _BLOCK]
            lg = base[sub].T[:, :, None] + shift.T[:, None, :]  # (q, b, n_eta)
            lg -= lg.max(axis=0)
            np.exp(lg, out=lg)
            lg /= lg.sum(axis=0)
            lg *= ew  # now P*(y | omega, eta) times the eta weight
            wy[sub] = lg.sum(axis=2).T
            ty[sub] = np.matmul(lg, enodes).transpose(1, 0, 2)  # (b, q, r)
    vinv = np.linalg.inv(V)
    zhat, p, kinv = _prox(omega, vinv, ls, cs, init)
    f = (zhat - omega[:, None, :]) @ vinv.T  # (n_xi, y, r)
    # Per-node contributions (summed over labels with their probabilities).
    c_qh = np.einsum("xy,xyk,xyl->xkl", wy, f, f)
    cinv = np.linalg.pinv(cfac)
    c_mh = np.einsum("xyk,xyl->xkl", f, ty) @ cinv  # (n_xi, r, r)
    vkv = vinv @ kinv @ vinv  # (n_xi, y, r, r)
    c_vh = np.einsum("xy,xykl->xkl", wy, vinv - vkv)
    logp_test = _log_softmax(omega @ ls.T + cs)  # (n_xi, q)
    c_eps = -(wy * logp_test).sum(axis=1)
    pred = np.argmax(omega @ ls.T + cs, axis=1)
    c_cls = 1.0 - wy[np.arange(len(pred)), pred]
    nb = lb.shape[1]
    eye_q = np.eye(q)
    # Bias stationarity: E[L_b^T (p - e_y)] and its derivative (through zhat as well).
    resid = p - eye_q  # (x, y, q)
    c_bg = np.einsum("xy,xya,ab->xb", wy, resid, lb)
    hl = p[..., :, None] * eye_q - p[..., :, None] * p[..., None, :]  # (x, y, q, q)
    hl_lb = hl @ lb  # (x, y, q, nb)
    lt_hl_lb = np.einsum("ak,xyab->xykb", ls, hl_lb)  # (x, y, r, nb)
    dz = -kinv @ lt_hl_lb  # (x, y, r, nb)
    dlogit = np.einsum("ak,xykb->xyab", ls, dz) + lb  # (x, y, q, nb)
    c_bj = (
        np.einsum("xy,xyac,ab,xycd->xbd", wy, hl, lb, dlogit) if nb else np.zeros((len(wy), 0, 0))
    )

    w = xi.weights
    contrib = {
        "qh": alpha * c_qh,
        "mh": alpha * c_mh,
        "vh": alpha * c_vh,
        "eps_g": c_eps,
        "class_error": c_cls,
    }
    totals = {k: np.tensordot(w, v, axes=(0, 0)) for k, v in contrib.items()}
    groups: dict[str, np.ndarray] = {}
    if xi.n_groups > 1:
        for k, v in contrib.items():
            groups[k] = np.stack(
                [
                    np.tensordot(w[xi.groups == g], v[xi.groups == g], axes=(0, 0))
                    / w[xi.groups == g].sum()
                    for g in range(xi.n_groups)
                ]
            )
    return ChannelResult(
        qh=totals["qh"],
        mh=totals["mh"],
        vh=totals["vh"],
        eps_g=float(totals["eps_g"]),
        class_error=float(totals["class_error"]),
        bias_grad=np.tensordot(w, c_bg, axes=(0, 0)),
        bias_jac=np.tensordot(w, c_bj, axes=(0, 0)),
        groups=groups,
        zhat=zhat,
    )
