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

import logging
from typing import Any

import numpy as np

from ..errors import ConvergenceError
from ._channel import ChannelResult, channel
from ._common import (
    FixedPointReport,
    ReplicaPoint,
    SolverOptions,
    build_rules,
    check_point,
    relative_error,
    teacher_entropy,
    teacher_mean_nodes,
)
from .scenario import Scenario

__all__ = ["solve_factored"]

log = logging.getLogger(__name__)

#: q_ above this is taken as divergence (no finite minimiser, e.g. lam = 0 and separable data).
DIVERGENCE_Q = 1e8


def _initial(scn: Scenario) -> np.ndarray:
    """A small valid start ``(m, q_, V)`` (``m^2 <= rho q_``) for the damped iteration."""
    return np.array([0.05 * scn.rho, 0.05 * scn.rho, 1.0])


def _prior(mh: float, qh: float, vh: float, lam: float, rho: float) -> np.ndarray:
    v = 1.0 / (lam + vh)
    return np.array([rho * mh * v, (rho * mh**2 + qh) * v**2, v])


def _evaluate(
    scn: Scenario,
    x: np.ndarray,
    bias: float,
    s_star: float,
    alpha: float,
    rules: tuple[Any, Any],
    init: np.ndarray | None,
) -> ChannelResult:
    r = scn.rank
    eye = np.eye(r)
    m, qq, v = x
    lb = scn.mean_dir[:, None] if scn.has_mean else np.zeros((scn.q, 0))
    xi, eta = rules
    return channel(
        xi,
        eta,
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
        init=init if init is not None and init.shape[0] == xi.nodes.shape[0] else None,
    )


def _solve_one(
    scn: Scenario,
    alpha: float,
    lam: float,
    s_star: float,
    options: SolverOptions,
    state: dict[str, Any] | None,
) -> dict[str, Any]:
    rules = build_rules(scn.rank, options)
    x = np.array(state["x"], dtype=float) if state else _initial(scn)
    bias = float(state["bias"]) if state else 0.0
    zhat = state.get("zhat") if state else None
    d = options.damping
    prev = np.inf
    residual = np.inf
    message = f"no convergence in {options.max_iter} iterations"
    converged = False
    hist_y: list[np.ndarray] = []  # Anderson history: iterates (m, q_, V, S) ...
    hist_g: list[np.ndarray] = []  # ... and their fixed-point residuals F(y) - y
    it = 0
    for it in range(1, options.max_iter + 1):  # noqa: B007 (it is reported after the loop)
        ch = _evaluate(scn, x, bias, s_star, alpha, rules, zhat)
        zhat = ch.zhat
        xn = _prior(np.trace(ch.mh), np.trace(ch.qh), np.trace(ch.vh), lam, scn.rho)
        step_b = 0.0
        if scn.has_mean:
            step_b = -float(ch.bias_grad[0] / ch.bias_jac[0, 0])
        scale = np.maximum(np.maximum(np.abs(x), np.abs(xn)), 1e-10)
        residual = float(max(np.max(np.abs(xn - x) / scale), abs(step_b) / (1 + abs(bias))))
        if not np.all(np.isfinite(xn)) or not np.isfinite(residual):
            message = "non-finite iterate"
            break
        if residual < options.tol:
            converged = True
            message = "converged"
            break
        if xn[1] > DIVERGENCE_Q:
            message = (
                f"diverged: q_ = |a|^2/N exceeds {DIVERGENCE_Q:g} (no finite minimiser; with "
                "lam = 0 the data are separable at this alpha; use lam > 0 or a larger alpha)"
            )
            break
        if residual > prev:
            d = max(0.5 * d, options.min_damping)
            hist_y.clear()
            hist_g.clear()
        else:
            d = min(1.05 * d, options.damping)
        prev = residual
        y = np.append(x, bias)
        g = np.append(xn, bias + step_b) - y
        y_new = y + d * g
        if options.anderson > 0:
            hist_y.append(y)
            hist_g.append(g)
            del hist_y[: -options.anderson - 1], hist_g[: -options.anderson - 1]
            if len(hist_y) > 1:
                # Anderson mixing (type II) on residuals weighted by the iterate's scale.
                wgt = 1.0 / np.maximum(np.abs(y), 1e-6)
                dy = np.diff(np.array(hist_y), axis=0)  # (k, 4)
                dg = np.diff(np.array(hist_g), axis=0)
                gamma = np.linalg.lstsq((dg * wgt).T, g * wgt, rcond=None)[0]
                cand = y + d * g - (dy + d * dg).T @ gamma
                valid = (
                    np.all(np.isfinite(cand))
                    and cand[1] > 0
                    and cand[2] > 0
                    and cand[0] ** 2 < scn.rho * cand[1]
                )
                if valid:
                    y_new = cand
                else:
                    hist_y.clear()
                    hist_g.clear()
        x = y_new[:3]
        bias = float(y_new[3])
    return {
        "x": x,
        "bias": bias,
        "zhat": zhat,
        "ch": ch,
        "iterations": it,
        "residual": residual,
        "converged": converged,
        "message": message,
        "rules": rules,
        "conj": (float(np.trace(ch.mh)), float(np.trace(ch.qh)), float(np.trace(ch.vh))),
    }


def _error_estimate(
    scn: Scenario,
    alpha: float,
    lam: float,
    s_star: float,
    sol: dict[str, Any],
    options: SolverOptions,
) -> dict[str, float]:
    """Integration error of the map's outputs and of eps_g at the fixed point."""
    ch: ChannelResult = sol["ch"]
    mh0, qh0, vh0 = sol["conj"]
    base_map = _prior(mh0, qh0, vh0, lam, scn.rho)
    xi, _ = sol["rules"]
    if xi.kind == "qmc":
        if xi.n_groups < 2:
            return {}
        g = ch.groups
        maps = np.array(
            [
                _prior(
                    np.trace(g["mh"][k]), np.trace(g["qh"][k]), np.trace(g["vh"][k]), lam, scn.rho
                )
                for k in range(xi.n_groups)
            ]
        )
        se = maps.std(axis=0, ddof=1) / np.sqrt(xi.n_groups)
        err = {"m": se[0], "q": se[1], "V": se[2]}
        for key in ("eps_g", "class_error"):
            err[key] = float(g[key].std(ddof=1) / np.sqrt(xi.n_groups))
        return {k: float(v) for k, v in err.items()}
    fine = build_rules(scn.rank, options, fine=True)
    chf = _evaluate(scn, sol["x"], sol["bias"], s_star, alpha, fine, None)
    fine_map = _prior(np.trace(chf.mh), np.trace(chf.qh), np.trace(chf.vh), lam, scn.rho)
    diff = np.abs(fine_map - base_map)
    return {
        "m": float(diff[0]),
        "q": float(diff[1]),
        "V": float(diff[2]),
        "eps_g": abs(chf.eps_g - ch.eps_g),
        "class_error": abs(chf.class_error - ch.class_error),
    }


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
    if scenario.has_mean and teacher_mean is None:
        nodes, weights = teacher_mean_nodes(scenario.rho, options.teacher_mean_nodes)
    else:
        nodes = np.array([0.0 if teacher_mean is None else float(teacher_mean)])
        weights = np.ones(1)
    prev_states = list(init.state.get("nodes", [])) if init is not None else []
    sols: list[dict[str, Any]] = []
    for k, s_star in enumerate(nodes):
        st = prev_states[k] if k < len(prev_states) else (sols[-1] if sols else None)
        sols.append(_solve_one(scenario, alpha, lam, float(s_star), options, st))
    errs = [
        _error_estimate(scenario, alpha, lam, float(s), sol, options)
        if options.error_estimate
        else {}
        for s, sol in zip(nodes, sols, strict=True)
    ]
    ent = [
        teacher_entropy(
            scenario.readout,
            scenario.rho * np.eye(scenario.rank),
            float(s) * scenario.mean_dir,
            scenario.beta,
            options,
        )
        for s in nodes
    ]

    def avg(values: list[float]) -> float:
        return float(np.dot(weights, values))

    m = avg([s["x"][0] for s in sols])
    qq = avg([s["x"][1] for s in sols])
    v = avg([s["x"][2] for s in sols])
    eps_g = avg([s["ch"].eps_g for s in sols])
    eps_opt = avg([e[0] for e in ent])
    order: dict[str, Any] = {
        "m": m,
        "q": qq,
        "V": v,
        "mh": avg([s["conj"][0] for s in sols]),
        "qh": avg([s["conj"][1] for s in sols]),
        "Vh": avg([s["conj"][2] for s in sols]),
    }
    if scenario.has_mean:
        if teacher_mean is None:
            order["bias_rms"] = float(np.sqrt(avg([s["bias"] ** 2 for s in sols])))
        else:
            order["bias"] = float(sols[0]["bias"])
    keys = sorted({k for e in errs for k in e})
    integration_error = {k: avg([e.get(k, np.nan) for e in errs]) for k in keys}
    converged = all(s["converged"] for s in sols)
    rel = relative_error(integration_error, {"m": m, "q": qq, "V": v, "eps_g": eps_g})
    messages = {s["message"] for s in sols}
    if rel > options.integration_rtol:
        converged = False
        messages.add(
            f"integration error {rel:.2g} above integration_rtol {options.integration_rtol:g} "
            "(raise gh_nodes or qmc_points / qmc_eta_points)"
        )
    report = FixedPointReport(
        iterations=int(sum(s["iterations"] for s in sols)),
        residual=float(max(s["residual"] for s in sols)),
        converged=converged,
        integration=sols[0]["rules"][0].kind,
        n_nodes=int(sols[0]["rules"][0].nodes.shape[0]),
        integration_error=integration_error,
        message="; ".join(sorted(messages)),
        precision=options.integration_rtol,
        relative_integration_error=rel,
    )
    if not converged:
        msg = (
            f"factored fixed point at alpha={alpha:g}, lam={lam:g} not converged: "
            f"{report.message} (residual {report.residual:.3g}, tol {options.tol:g})"
        )
        if options.strict:
            raise ConvergenceError(msg)
        log.warning(msg)
    point = ReplicaPoint(
        alpha=float(alpha),
        lam=float(lam),
        eps_g=eps_g,
        eps_opt=eps_opt,
        kl=eps_g - eps_opt,
        coupling_error=qq - 2 * scenario.beta * m + scenario.beta**2 * scenario.rho,
        class_error=avg([s["ch"].class_error for s in sols]),
        class_error_opt=avg([e[1] for e in ent]),
        order=order,
        report=report,
        state={"nodes": [{"x": s["x"], "bias": s["bias"], "zhat": s["zhat"]} for s in sols]},
    )
    return point
