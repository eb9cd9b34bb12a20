"""Replica-symmetric fixed point of the factored student (docs/theory.md; numpy/scipy only).

The student learns one attention row ``a`` (``N`` numbers) with the value matrix fixed to the
teacher's ``Ucol``, by minimising ``sum_mu CE(y_mu, z_mu) + (lam / 2) |a|^2`` over ``M = alpha N``
samples. In the limit ``N -> inf`` the student's and the teacher's fluctuating logits are
``B g`` and ``beta B g*`` with ``B B^T = Pi Omega Pi`` and ``(g, g*)`` Gaussian with covariances
``q_ I``, ``m I``, ``rho I``; the order parameters are ``q_ = |a|^2 / N``, ``m = a . w* / N`` and the
response ``V``. Prior channel (L2 penalty): ``V = 1 / (lam + Vh)``, ``m = rho mh / (lam + Vh)``,
``q_ = (rho mh^2 + qh) / (lam + Vh)^2``. The conjugates are the traces of the matrix conjugates of
the multi-class output channel (:mod:`attnpotts.theory._channel`).

If the rows of ``Ucol`` have unequal sums, the logits also carry ``S * Pi mu`` (student) and
``S* * Pi mu`` (teacher), ``S = sum_j a_j / sqrt(N)``: one direction of ``a`` fitted by ``alpha N``
samples, hence unregularised in the limit and fixed by the stationarity condition
``E[(Pi mu) . (p - e_y)] = 0``, solved by Newton steps inside the iteration. The teacher's ``S*`` is
quenched: either given, or averaged over ``N(0, rho)`` by Gauss-Hermite (the default).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._channel import ChannelPoint, ChannelResult, channel
from ._common import ReplicaPoint, SolverOptions, check_point, teacher_entropy
from ._gauss import GaussRule
from ._solver import DIVERGENCE_Q, Iterate, NodeSolution, ScalarStudent, Step, solve_student
from .scenario import Scenario

__all__ = ["solve_factored"]


def _initial(scn: Scenario) -> np.ndarray:
    """A small valid start ``(m, q_, V)`` (``m^2 <= rho q_``) for the damped iteration."""
    return np.array([0.05 * scn.rho, 0.05 * scn.rho, 1.0])


def _prior(mh: float, qh: float, vh: float, lam: float, rho: float) -> np.ndarray:
    """The L2 prior channel: ``(m, q_, V)`` from the conjugates."""
    v = 1.0 / (lam + vh)
    return np.array([rho * mh * v, (rho * mh**2 + qh) * v**2, v])


def _evaluate(
    scn: Scenario,
    x: np.ndarray,
    bias: float,
    s_star: float,
    alpha: float,
    rules: tuple[GaussRule, GaussRule],
    init: np.ndarray | None,
) -> ChannelResult:
    """The output channel at ``x = (m, q_, V)`` and the student's mean ``S = bias``."""
    eye = np.eye(scn.rank)
    m, qq, v = x
    lb = scn.mean_dir[:, None] if scn.has_mean else np.zeros((scn.q, 0))
    xi, eta = rules
    at = ChannelPoint(
        Q=qq * eye,
        M=m * eye,
        Rho=scn.rho * eye,
        V=v * eye,
        ls=scn.readout,
        lt=scn.readout,
        cs=bias * scn.mean_dir,
        ct=s_star * scn.mean_dir,
        lb=lb,
        beta=scn.beta,
        alpha=alpha,
    )
    return channel(
        xi, eta, at, init=init if init is not None and init.shape[0] == xi.nodes.shape[0] else None
    )


class _Factored(ScalarStudent):
    """Iterate ``{"x": (m, q_, V), "bias": S, "zhat": proximal points}``; Anderson-mixed."""

    label = "factored"
    anderson = True

    def __init__(
        self,
        scn: Scenario,
        alpha: float,
        lam: float,
        options: SolverOptions,
        teacher_mean: float | None,
    ) -> None:
        super().__init__(alpha, lam, options, scn.rank)
        self.scn = scn
        self.teacher_mean = teacher_mean
        self.has_mean, self.beta, self.rho = scn.has_mean, scn.beta, scn.rho

    def start(self, warm: Iterate | None) -> Iterate:
        if warm:
            return {
                "x": np.array(warm["x"], dtype=float),
                "bias": float(warm["bias"]),
                "zhat": warm.get("zhat"),
            }
        return {"x": _initial(self.scn), "bias": 0.0, "zhat": None}

    def step(self, x: Iterate, s_star: float) -> Step:
        scn = self.scn
        assert self.rules is not None
        ch = _evaluate(scn, x["x"], x["bias"], s_star, self.alpha, self.rules, x["zhat"])
        xn = _prior(np.trace(ch.mh), np.trace(ch.qh), np.trace(ch.vh), self.lam, scn.rho)
        step_b = 0.0
        if scn.has_mean:
            step_b = -float(ch.bias_grad[0] / ch.bias_jac[0, 0])
        residual = self.residual(x["x"], xn, step_b, x["bias"])
        divergence = ""
        if xn[1] > DIVERGENCE_Q:
            divergence = (
                f"diverged: q_ = |a|^2/N exceeds {DIVERGENCE_Q:g} (no finite minimiser; with "
                "lam = 0 the data are separable at this alpha; use lam > 0 or a larger alpha)"
            )
        finite = bool(np.all(np.isfinite(xn)) and np.isfinite(residual))
        return Step(ch, {"x": xn, "step_b": step_b}, residual, finite, divergence)

    def vector(self, x: Iterate, step: Step) -> tuple[np.ndarray, np.ndarray]:
        y = np.append(x["x"], x["bias"])
        return y, np.append(step.target["x"], x["bias"] + step.target["step_b"]) - y

    def from_vector(self, y: np.ndarray, step: Step) -> Iterate:
        return {"x": y[:3], "bias": float(y[3]), "zhat": step.channel.zhat}

    def admissible(self, y: np.ndarray) -> bool:
        return bool(y[1] > 0 and y[2] > 0 and y[0] ** 2 < self.scn.rho * y[1])

    def mix(self, x: Iterate, step: Step, damping: float) -> Iterate:
        y, g = self.vector(x, step)
        return self.from_vector(y + damping * g, step)

    def warm_state(self, sol: NodeSolution) -> Iterate:
        return {"x": sol.iterate["x"], "bias": sol.iterate["bias"], "zhat": sol.step.channel.zhat}

    def channel(self, x: Iterate, s_star: float, rules: tuple[GaussRule, GaussRule]) -> Any:
        return _evaluate(self.scn, x["x"], x["bias"], s_star, self.alpha, rules, None)

    def summary(self, qh: np.ndarray, mh: np.ndarray, vh: np.ndarray) -> np.ndarray:
        return _prior(np.trace(mh), np.trace(qh), np.trace(vh), self.lam, self.scn.rho)

    def scalars(self, ch: Any) -> tuple[tuple[float, float, float], float, float]:
        conj = (float(np.trace(ch.mh)), float(np.trace(ch.qh)), float(np.trace(ch.vh)))
        return conj, ch.eps_g, ch.class_error

    def teacher(self, s_star: float) -> tuple[float, float]:
        scn = self.scn
        rho_mat = scn.rho * np.eye(scn.rank)
        return teacher_entropy(scn.readout, rho_mat, s_star * scn.mean_dir, scn.beta, self.options)


def solve_factored(
    scenario: Scenario,
    alpha: float,
    lam: float,
    *,
    options: SolverOptions | None = None,
    teacher_mean: float | None = None,
    init: ReplicaPoint | None = None,
) -> ReplicaPoint:
    """Solve the replica-symmetric fixed point of the factored student at ``(alpha, lam)``.

    Args:
        scenario: the teacher (``Ucol``, ``beta``, ``rho``).
        alpha: samples per site ``M / N`` (> 0).
        lam: L2 strength on the attention row (>= 0; 0 only where a finite minimiser exists).
        options: numerical options (:class:`SolverOptions`).
        teacher_mean: the teacher's ``S* = sum_j w*_j / sqrt(N)`` when ``Ucol`` has unequal row
            sums; ``None`` averages the observables over ``S* ~ N(0, rho)`` (what an average over
            teachers measures). Ignored for equal row sums.
        init: a solved point to start from (continuation in ``alpha`` or ``lam``).

    Returns:
        A :class:`ReplicaPoint`; ``order`` holds ``m, q, V, mh, qh, Vh`` (averages over ``S*``
        when averaged) and ``bias`` (the student's ``S``; ``bias_rms`` when averaged).

    Raises:
        ConvergenceError: ``options.strict`` and the iteration did not converge.
    """
    options = options or SolverOptions()
    check_point(alpha, lam)
    student = _Factored(scenario, alpha, lam, options, teacher_mean)
    return solve_student(
        student,
        has_mean=scenario.has_mean,
        teacher_mean=teacher_mean,
        rho=scenario.rho,
        init=init,
    )
