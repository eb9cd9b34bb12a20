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
from .scenario import Scenario, centering_basis

__all__ = ["solve_full"]

log = logging.getLogger(__name__)


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + a.T)


def _prior(
    qh: np.ndarray, mh: np.ndarray, vh: np.ndarray, lam: float, rho_mat: np.ndarray, q: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k = q - 1
    s2 = 1.0 / q
    a = np.linalg.inv(lam * np.eye(k) + s2 * _sym(vh))
    a = _sym(a)
    v = s2 * k * a
    m = s2 * a @ mh @ rho_mat
    qq = s2**2 * a @ (k * _sym(qh) + mh @ rho_mat @ mh.T) @ a
    return _sym(qq), m, _sym(v)


def _solve_one(
    scn: Scenario,
    alpha: float,
    lam: float,
    s_star: float,
    options: SolverOptions,
    start: dict[str, Any] | None,
    rules: tuple[Any, Any],
) -> dict[str, Any]:
    q = scn.q
    k = q - 1
    p = centering_basis(q)
    t = p.T @ scn.ucol @ p
    rho_mat = scn.rho * t @ t / q
    if start:
        qq, m, v = (np.array(a) for a in start["x"])
        b = np.array(start["b"])
        zhat = start.get("zhat")
    else:
        qq = 0.05 * np.trace(rho_mat) / k * np.eye(k) + 1e-3 * np.eye(k)
        m = np.zeros((k, k))
        v = (k / q) * np.eye(k)
        b = np.zeros(k)
        zhat = None
    xi, eta = rules
    d = options.damping
    prev = np.inf
    residual = np.inf
    converged = False
    message = f"no convergence in {options.max_iter} iterations"
    it = 0
    ch: ChannelResult | None = None
    for it in range(1, options.max_iter + 1):  # noqa: B007 (it is reported after the loop)
        ch = channel(
            xi,
            eta,
            Q=qq,
            M=m,
            Rho=rho_mat,
            V=v,
            ls=p,
            lt=p,
            cs=p @ b,
            ct=s_star * scn.mean_dir,
            lb=p,
            beta=scn.beta,
            alpha=alpha,
            init=zhat if zhat is not None and zhat.shape[0] == xi.nodes.shape[0] else None,
        )
        zhat = ch.zhat
        qn, mn, vn = _prior(ch.qh, ch.mh, ch.vh, lam, rho_mat, q)
        step_b = -np.linalg.solve(_sym(ch.bias_jac), ch.bias_grad)
        res = [
            np.abs(new - old).max() / max(np.abs(new).max(), np.abs(old).max(), 1e-10)
            for new, old in ((qn, qq), (mn, m), (vn, v))
        ]
        residual = float(max(*res, np.abs(step_b).max() / (1 + np.abs(b).max())))
        if not np.isfinite(residual):
            message = "non-finite iterate"
            break
        if residual < options.tol:
            converged = True
            message = "converged"
            break
        if np.trace(qn) > 1e8:
            message = "diverged: tr Q exceeds 1e8 (no finite minimiser; use lam > 0)"
            break
        d = max(0.5 * d, options.min_damping) if residual > prev else min(1.05 * d, options.damping)
        prev = residual
        qq = (1 - d) * qq + d * qn
        m = (1 - d) * m + d * mn
        v = (1 - d) * v + d * vn
        b = b + d * step_b
    assert ch is not None
    return {
        "x": (qq, m, v),
        "b": b,
        "zhat": zhat,
        "ch": ch,
        "it": it,
        "res": residual,
        "conv": converged,
        "msg": message,
        "rho_mat": rho_mat,
    }


def _error(
    scn: Scenario,
    alpha: float,
    lam: float,
    s_star: float,
    sol: dict[str, Any],
    options: SolverOptions,
    rules: tuple[Any, Any],
) -> dict[str, float]:
    ch: ChannelResult = sol["ch"]
    q = scn.q
    base = _prior(ch.qh, ch.mh, ch.vh, lam, sol["rho_mat"], q)
    xi = rules[0]
    if xi.kind == "qmc":
        if xi.n_groups < 2:
            return {}
        g = ch.groups
        maps = [
            _prior(g["qh"][j], g["mh"][j], g["vh"][j], lam, sol["rho_mat"], q)
            for j in range(xi.n_groups)
        ]
        sq = np.sqrt(xi.n_groups)
        return {
            "q": float(np.std([np.trace(x[0]) for x in maps], ddof=1) / sq),
            "m": float(np.std([np.trace(x[1]) for x in maps], ddof=1) / sq),
            "V": float(np.std([np.trace(x[2]) for x in maps], ddof=1) / sq),
            "eps_g": float(g["eps_g"].std(ddof=1) / sq),
            "class_error": float(g["class_error"].std(ddof=1) / sq),
        }
    fine = build_rules(q - 1, options, fine=True)
    p = centering_basis(q)
    qq, m, v = sol["x"]
    chf = channel(
        fine[0],
        fine[1],
        Q=qq,
        M=m,
        Rho=sol["rho_mat"],
        V=v,
        ls=p,
        lt=p,
        cs=p @ sol["b"],
        ct=s_star * scn.mean_dir,
        lb=p,
        beta=scn.beta,
        alpha=alpha,
    )
    fm = _prior(chf.qh, chf.mh, chf.vh, lam, sol["rho_mat"], q)
    return {
        "q": float(abs(np.trace(fm[0]) - np.trace(base[0]))),
        "m": float(abs(np.trace(fm[1]) - np.trace(base[1]))),
        "V": float(abs(np.trace(fm[2]) - np.trace(base[2]))),
        "eps_g": abs(chf.eps_g - ch.eps_g),
        "class_error": abs(chf.class_error - ch.class_error),
    }


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
    if scenario.has_mean and teacher_mean is None:
        nodes, weights = teacher_mean_nodes(scenario.rho, options.teacher_mean_nodes)
    else:
        nodes = np.array([0.0 if teacher_mean is None else float(teacher_mean)])
        weights = np.ones(1)
    rules = build_rules(scenario.q - 1, options)
    prev_states = list(init.state.get("nodes", [])) if init is not None else []
    sols: list[dict[str, Any]] = []
    for j, s_star in enumerate(nodes):
        st = prev_states[j] if j < len(prev_states) else (sols[-1] if sols else None)
        sols.append(_solve_one(scenario, alpha, lam, float(s_star), options, st, rules))
    errs = [
        _error(scenario, alpha, lam, float(s), sol, options, rules)
        if options.error_estimate
        else {}
        for s, sol in zip(nodes, sols, strict=True)
    ]
    p = centering_basis(scenario.q)
    ent = [
        teacher_entropy(p, sols[0]["rho_mat"], float(s) * scenario.mean_dir, scenario.beta, options)
        for s in nodes
    ]

    def avg(vals: list[Any]) -> Any:
        return sum(w * v for w, v in zip(weights, vals, strict=True))

    qq = avg([s["x"][0] for s in sols])
    m = avg([s["x"][1] for s in sols])
    v = avg([s["x"][2] for s in sols])
    qh = avg([s["ch"].qh for s in sols])
    mh = avg([s["ch"].mh for s in sols])
    vh = avg([s["ch"].vh for s in sols])
    rho_mat = sols[0]["rho_mat"]
    eps_g = float(avg([s["ch"].eps_g for s in sols]))
    eps_opt = float(avg([e[0] for e in ent]))
    order: dict[str, Any] = {
        "m": float(np.trace(m)),
        "q": float(np.trace(qq)),
        "V": float(np.trace(v)),
        "mh": float(np.trace(mh)),
        "qh": float(np.trace(qh)),
        "Vh": float(np.trace(vh)),
        "Q_matrix": qq.tolist(),
        "M_matrix": m.tolist(),
        "V_matrix": v.tolist(),
        "Qh_matrix": qh.tolist(),
        "Mh_matrix": mh.tolist(),
        "Vh_matrix": vh.tolist(),
        "Rho_matrix": rho_mat.tolist(),
    }
    if teacher_mean is None and len(nodes) > 1:
        order["bias_rms"] = float(np.sqrt(avg([float(s["b"] @ s["b"]) for s in sols])))
    else:
        order["bias"] = sols[0]["b"].tolist()
    keys = sorted({kk for e in errs for kk in e})
    integration_error = {kk: float(avg([e.get(kk, np.nan) for e in errs])) for kk in keys}
    converged = all(s["conv"] for s in sols)
    rel = relative_error(
        integration_error,
        {
            "m": float(np.trace(m)),
            "q": float(np.trace(qq)),
            "V": float(np.trace(v)),
            "eps_g": eps_g,
        },
    )
    messages = {s["msg"] for s in sols}
    if rel > options.integration_rtol:
        converged = False
        messages.add(
            f"integration error {rel:.2g} above integration_rtol {options.integration_rtol:g} "
            "(raise gh_nodes or qmc_points / qmc_eta_points)"
        )
    report = FixedPointReport(
        iterations=int(sum(s["it"] for s in sols)),
        residual=float(max(s["res"] for s in sols)),
        converged=converged,
        integration=rules[0].kind,
        n_nodes=int(rules[0].nodes.shape[0]),
        integration_error=integration_error,
        message="; ".join(sorted(messages)),
        precision=options.integration_rtol,
        relative_integration_error=rel,
    )
    if not converged:
        msg = f"full-student fixed point at alpha={alpha:g}, lam={lam:g}: {report.message}"
        if options.strict:
            raise ConvergenceError(msg)
        log.warning(msg)
    q = scenario.q
    beta = scenario.beta
    return ReplicaPoint(
        alpha=float(alpha),
        lam=float(lam),
        eps_g=eps_g,
        eps_opt=eps_opt,
        kl=eps_g - eps_opt,
        coupling_error=float(
            q * (np.trace(qq) - 2 * beta * np.trace(m) + beta**2 * np.trace(rho_mat))
        ),
        class_error=float(avg([s["ch"].class_error for s in sols])),
        class_error_opt=float(avg([e[1] for e in ent])),
        order=order,
        report=report,
        state={"nodes": [{"x": s["x"], "b": s["b"], "zhat": s["zhat"]} for s in sols]},
    )
