"""Matrix-order-parameter replica theory of a full per-site student (a plmDCA row; numpy only).

The student has a free weight matrix per site, ``z_a = sum_j sum_b W_j[b, a] x_j[b] / sqrt(N)``
(one-hot ``x_j``), ``(N q) x q`` numbers, fitted by ``sum_mu CE + (lam / 2) sum_j |W_j|_F^2`` on
data of the same teacher as :func:`attnpotts.theory.solve_factored`. Centring each one-hot input
on the ``q - 1`` dimensional subspace ``1^perp`` (orthonormal basis ``P``) gives isotropic inputs
of variance ``sigma^2 = 1 / q`` in dimension ``D = N (q - 1)``, and the logits that softmax sees are
``K = q - 1`` dimensional. This is the multi-class generalized linear model of Loureiro et al.
(2021) and Cornacchia et al. (2023) with ``K x K`` order parameters ``Q = W^T Sigma W / N``,
``M = W^T Sigma W* / N``, ``V`` and the teacher's ``Rho = rho T^2 / q`` (``T = P^T Ucol P``).
Prior channel of the L2 penalty, with ``A = (lam I + sigma^2 Vh)^-1``:
``V = sigma^2 (q - 1) A``, ``M = sigma^2 A Mh Rho``,
``Q = sigma^4 A ((q - 1) Qh + Mh Rho Mh^T) A``.
The output channel is :mod:`attnpotts.theory._channel` with read-out ``P``. The mean direction of
``W`` acts as a free bias ``b`` in ``1^perp`` (unregularised in the limit), fixed by
``E[P^T (p - e_y)] = 0``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._channel import ChannelPoint, channel
from ._common import ReplicaPoint, SolverOptions, check_point, teacher_entropy
from ._gauss import GaussRule
from ._solver import DIVERGENCE_Q, FixedPointStudent, Iterate, NodeSolution, Step, solve_student
from .scenario import Scenario, centering_basis

__all__ = ["solve_full"]


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + a.T)


def _prior(
    qh: np.ndarray, mh: np.ndarray, vh: np.ndarray, lam: float, rho_mat: np.ndarray, q: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The L2 prior channel: ``(Q, M, V)`` from the conjugates (module docstring)."""
    k = q - 1
    s2 = 1.0 / q
    a = np.linalg.inv(lam * np.eye(k) + s2 * _sym(vh))
    a = _sym(a)
    v = s2 * k * a
    m = s2 * a @ mh @ rho_mat
    qq = s2**2 * a @ (k * _sym(qh) + mh @ rho_mat @ mh.T) @ a
    return _sym(qq), m, _sym(v)


class _Full(FixedPointStudent):
    """Iterate ``{"x": (Q, M, V), "b": bias (q - 1,), "zhat": proximal points}``; damped."""

    label = "full-student"

    def __init__(
        self,
        scn: Scenario,
        alpha: float,
        lam: float,
        options: SolverOptions,
        teacher_mean: float | None,
    ) -> None:
        super().__init__(alpha, lam, options, scn.q - 1)
        self.scn = scn
        self.teacher_mean = teacher_mean
        self.p = centering_basis(scn.q)  # (q, q - 1)
        t = self.p.T @ scn.ucol @ self.p
        self.rho_mat = scn.rho * t @ t / scn.q  # (q - 1, q - 1) teacher's Rho

    def start(self, warm: Iterate | None) -> Iterate:
        if warm:
            qq, m, v = (np.array(a) for a in warm["x"])
            return {"x": (qq, m, v), "b": np.array(warm["b"]), "zhat": warm.get("zhat")}
        q = self.scn.q
        k = q - 1
        return {
            "x": (
                0.05 * np.trace(self.rho_mat) / k * np.eye(k) + 1e-3 * np.eye(k),
                np.zeros((k, k)),
                (k / q) * np.eye(k),
            ),
            "b": np.zeros(k),
            "zhat": None,
        }

    def _at(self, x: Iterate, s_star: float) -> ChannelPoint:
        qq, m, v = x["x"]
        p = self.p
        return ChannelPoint(
            Q=qq,
            M=m,
            Rho=self.rho_mat,
            V=v,
            ls=p,
            lt=p,
            cs=p @ x["b"],
            ct=s_star * self.scn.mean_dir,
            lb=p,
            beta=self.scn.beta,
            alpha=self.alpha,
        )

    def step(self, x: Iterate, s_star: float) -> Step:
        assert self.rules is not None
        xi, eta = self.rules
        zhat = x["zhat"]
        init = zhat if zhat is not None and zhat.shape[0] == xi.nodes.shape[0] else None
        ch = channel(xi, eta, self._at(x, s_star), init=init)
        qn, mn, vn = _prior(ch.qh, ch.mh, ch.vh, self.lam, self.rho_mat, self.scn.q)
        step_b = -np.linalg.solve(_sym(ch.bias_jac), ch.bias_grad)
        res = [
            np.abs(new - old).max() / max(np.abs(new).max(), np.abs(old).max(), 1e-10)
            for new, old in zip((qn, mn, vn), x["x"], strict=True)
        ]
        residual = float(max(*res, np.abs(step_b).max() / (1 + np.abs(x["b"]).max())))
        divergence = ""
        if np.trace(qn) > DIVERGENCE_Q:
            divergence = (
                f"diverged: tr Q exceeds {DIVERGENCE_Q:g} (no finite minimiser; use lam > 0)"
            )
        target = {"x": (qn, mn, vn), "step_b": step_b}
        return Step(ch, target, residual, bool(np.isfinite(residual)), divergence)

    def mix(self, x: Iterate, step: Step, damping: float) -> Iterate:
        d = damping
        new = tuple(
            (1 - d) * old + d * tgt for old, tgt in zip(x["x"], step.target["x"], strict=True)
        )
        return {"x": new, "b": x["b"] + d * step.target["step_b"], "zhat": step.channel.zhat}

    def warm_state(self, sol: NodeSolution) -> Iterate:
        return {"x": sol.iterate["x"], "b": sol.iterate["b"], "zhat": sol.step.channel.zhat}

    def channel(self, x: Iterate, s_star: float, rules: tuple[GaussRule, GaussRule]) -> Any:
        return channel(rules[0], rules[1], self._at(x, s_star))

    def summary(self, qh: np.ndarray, mh: np.ndarray, vh: np.ndarray) -> np.ndarray:
        qq, m, v = _prior(qh, mh, vh, self.lam, self.rho_mat, self.scn.q)
        return np.array([np.trace(m), np.trace(qq), np.trace(v)])

    def node_values(self, sol: NodeSolution) -> dict[str, Any]:
        (qq, m, v), b, ch = sol.iterate["x"], sol.iterate["b"], sol.step.channel
        return {
            "Q": qq,
            "M": m,
            "V": v,
            "Qh": ch.qh,
            "Mh": ch.mh,
            "Vh": ch.vh,
            "eps_g": ch.eps_g,
            "class_error": ch.class_error,
            "b_sq": float(b @ b),
        }

    def teacher(self, s_star: float) -> tuple[float, float]:
        scn = self.scn
        return teacher_entropy(self.p, self.rho_mat, s_star * scn.mean_dir, scn.beta, self.options)

    def finish(self, avg: dict[str, Any], sols: list[NodeSolution]) -> tuple[dict[str, Any], float]:
        qq, m, v = avg["Q"], avg["M"], avg["V"]
        order: dict[str, Any] = {
            "m": float(np.trace(m)),
            "q": float(np.trace(qq)),
            "V": float(np.trace(v)),
            "mh": float(np.trace(avg["Mh"])),
            "qh": float(np.trace(avg["Qh"])),
            "Vh": float(np.trace(avg["Vh"])),
            "Q_matrix": qq.tolist(),
            "M_matrix": m.tolist(),
            "V_matrix": v.tolist(),
            "Qh_matrix": avg["Qh"].tolist(),
            "Mh_matrix": avg["Mh"].tolist(),
            "Vh_matrix": avg["Vh"].tolist(),
            "Rho_matrix": self.rho_mat.tolist(),
        }
        if self.teacher_mean is None and len(sols) > 1:
            order["bias_rms"] = float(np.sqrt(avg["b_sq"]))
        else:
            order["bias"] = sols[0].iterate["b"].tolist()
        q, beta = self.scn.q, self.scn.beta
        coupling_error = float(
            q * (np.trace(qq) - 2 * beta * np.trace(m) + beta**2 * np.trace(self.rho_mat))
        )
        return order, coupling_error


def solve_full(
    scenario: Scenario,
    alpha: float,
    lam: float,
    *,
    options: SolverOptions | None = None,
    teacher_mean: float | None = None,
    init: ReplicaPoint | None = None,
) -> ReplicaPoint:
    """Solve the matrix replica fixed point of the full per-site (plmDCA-row) student.

    Arguments as in :func:`attnpotts.theory.solve_factored`. ``order`` holds the traces
    ``q = tr Q``, ``m = tr M``, ``V = tr V`` (and of the conjugates) and the matrices themselves
    (``Q_matrix`` ... as nested lists, in the basis ``P`` of :func:`centering_basis`), plus the
    bias ``b`` (``bias_rms = sqrt(E|b|^2)`` when averaged over the teacher's mean).
    ``coupling_error`` is ``sum_j |P^T (W_j - beta W*_j) P|_F^2 / N`` with
    ``W*_j = w*_j Ucol``, i.e. ``q (tr Q - 2 beta tr M + beta^2 tr Rho)``.
    """
    options = options or SolverOptions()
    check_point(alpha, lam)
    student = _Full(scenario, alpha, lam, options, teacher_mean)
    return solve_student(
        student,
        has_mean=scenario.has_mean,
        teacher_mean=teacher_mean,
        rho=scenario.rho,
        init=init,
    )
