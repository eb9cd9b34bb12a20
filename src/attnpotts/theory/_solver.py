"""One skeleton for the replica fixed points of every student (numpy only).

A student (:class:`FixedPointStudent`) supplies its saddle-point equations: the output channel at
an iterate, the prior (L2) channel that maps the conjugates back to order parameters, and how its
averages read as order parameters. :func:`solve_student` does the rest, the same way for all:

* the quadrature rules (built once per point, shared by the teacher-mean nodes);
* the damped fixed-point iteration with adaptive damping (halved when the residual grows) and,
  for students whose iterate is a vector, Anderson mixing (:class:`Anderson`);
* warm starts: from the same node of a previous point (continuation in ``alpha`` or ``lambda``,
  :func:`attnpotts.theory.learning_curves`) or from the previous node of this point;
* the average over the teacher's quenched mean ``S* ~ N(0, rho)`` (Gauss-Hermite nodes);
* the integration-error estimate (a finer Gauss-Hermite rule, or the spread of QMC scrambles),
  the convergence report, the warning or error when it did not converge, the
  :class:`~attnpotts.theory.ReplicaPoint`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConvergenceError
from ._common import (
    FixedPointReport,
    ReplicaPoint,
    SolverOptions,
    build_rules,
    relative_error,
    teacher_mean_nodes,
)
from ._gauss import GaussRule

__all__ = [
    "Anderson",
    "FixedPointStudent",
    "NodeSolution",
    "ScalarStudent",
    "Step",
    "solve_student",
]

log = logging.getLogger(__name__)

#: ``q_`` (or ``tr Q``) above this is taken as divergence (no finite minimiser, e.g. ``lam = 0``
#: and separable data).
DIVERGENCE_Q = 1e8

#: An iterate of a student: its order parameters, bias and warm-start data, by name.
Iterate = dict[str, Any]


@dataclass
class Step:
    """One application of a student's saddle-point map at an iterate.

    Attributes:
        channel: the output-channel averages at the iterate (the student's own result type).
        target: the map's output ``F(iterate)`` (order parameters and the bias step).
        residual: largest relative change of an order parameter (or the bias) ``F(x)`` vs ``x``.
        finite: whether the map's output and the residual are finite numbers.
        divergence: why the iteration diverged (empty if it did not).
    """

    channel: Any
    target: dict[str, Any]
    residual: float
    finite: bool
    divergence: str = ""


@dataclass
class NodeSolution:
    """The fixed-point iteration at one teacher mean ``S*``.

    ``iterate`` is the last iterate and ``step`` the map at the iterate before it was mixed (the
    same iterate when the iteration converged).
    """

    iterate: Iterate
    step: Step
    iterations: int
    residual: float
    converged: bool
    message: str


class FixedPointStudent(ABC):
    """The saddle-point equations of one student at one ``(alpha, lam)``.

    Attributes:
        label: how messages name the student.
        rules: the ``(xi, eta)`` quadrature of the output channel, or ``None`` for a student
            with its own fixed rule (no integration-error estimate).
        integration, n_nodes: what the report says about the quadrature.
        precision: the relative precision claimed (``options.integration_rtol``; ``nan`` when
            the error is not estimated).
        anderson: whether the iterate is a vector that :class:`Anderson` may mix
            (:meth:`vector`, :meth:`from_vector`, :meth:`admissible`).
    """

    label: str = "replica"
    anderson: bool = False

    def __init__(self, alpha: float, lam: float, options: SolverOptions, dim: int | None) -> None:
        self.alpha = alpha
        self.lam = lam
        self.options = options
        self.dim = dim
        self.rules: tuple[GaussRule, GaussRule] | None = (
            None if dim is None else build_rules(dim, options)
        )
        self.integration = "gauss-hermite" if self.rules is None else self.rules[0].kind
        self.n_nodes = 0 if self.rules is None else int(self.rules[0].nodes.shape[0])
        self.precision = float("nan") if self.rules is None else options.integration_rtol

    @abstractmethod
    def start(self, warm: Iterate | None) -> Iterate:
        """The first iterate: ``warm`` (a :meth:`warm_state`) or the student's default start."""

    @abstractmethod
    def step(self, x: Iterate, s_star: float) -> Step:
        """Apply the saddle-point map at ``x`` for the teacher mean ``s_star``."""

    @abstractmethod
    def mix(self, x: Iterate, step: Step, damping: float) -> Iterate:
        """The damped update ``x <- (1 - d) x + d F(x)`` (bias: ``b <- b + d * Newton step``)."""

    def vector(self, x: Iterate, step: Step) -> tuple[np.ndarray, np.ndarray]:
        """``(y, F(y) - y)`` as flat vectors, for Anderson mixing."""
        raise NotImplementedError(f"{self.label}: no vector form of the iterate")

    def from_vector(self, y: np.ndarray, step: Step) -> Iterate:
        """The iterate of the flat vector ``y``."""
        raise NotImplementedError(f"{self.label}: no vector form of the iterate")

    def admissible(self, y: np.ndarray) -> bool:
        """Whether the (finite) flat vector ``y`` is a valid iterate."""
        raise NotImplementedError(f"{self.label}: no vector form of the iterate")

    @abstractmethod
    def warm_state(self, sol: NodeSolution) -> Iterate:
        """What a later solve starts from (stored in ``ReplicaPoint.state``)."""

    def channel(self, x: Iterate, s_star: float, rules: tuple[GaussRule, GaussRule]) -> Any:
        """The output channel at ``x`` with other rules (no warm start): the error estimate."""
        raise NotImplementedError(f"{self.label}: no rule-based channel")

    def summary(self, qh: np.ndarray, mh: np.ndarray, vh: np.ndarray) -> np.ndarray:
        """``(m, q, V)`` that the prior channel gives at the conjugates (scalars: traces)."""
        raise NotImplementedError(f"{self.label}: no rule-based channel")

    @abstractmethod
    def node_values(self, sol: NodeSolution) -> dict[str, Any]:
        """The numbers (scalars or arrays) averaged over the teacher-mean nodes; must hold
        ``eps_g`` and ``class_error``."""

    @abstractmethod
    def teacher(self, s_star: float) -> tuple[float, float]:
        """Optimal loss (teacher's conditional entropy) and Bayes error at ``s_star``."""

    @abstractmethod
    def finish(self, avg: dict[str, Any], sols: list[NodeSolution]) -> tuple[dict[str, Any], float]:
        """``(order, coupling_error)`` from the averages of :meth:`node_values` over the nodes;
        ``order`` holds the scalars ``m``, ``q`` and ``V``."""


class ScalarStudent(FixedPointStudent):
    """A student with scalar order parameters: iterate ``{"x": (m, q_, V), "bias": S, ...}``.

    Subclasses set ``has_mean`` (whether the logits carry the mean ``S``), ``teacher_mean``,
    ``beta`` and ``rho``, and implement :meth:`scalars`; the averages then read the same way for
    all of them, with the coupling error ``q_ - 2 beta m + beta^2 rho``.
    """

    has_mean: bool
    teacher_mean: float | None
    beta: float
    rho: float

    @staticmethod
    def residual(old: np.ndarray, new: np.ndarray, bias_step: float, bias: float) -> float:
        """Largest relative change of ``(m, q_, V)`` from ``old`` to ``new``, and of the bias."""
        scale = np.maximum(np.maximum(np.abs(old), np.abs(new)), 1e-10)
        return float(max(np.max(np.abs(new - old) / scale), abs(bias_step) / (1 + abs(bias))))

    @abstractmethod
    def scalars(self, ch: Any) -> tuple[tuple[float, float, float], float, float]:
        """``((mh, qh, Vh), eps_g, class_error)`` of the channel result ``ch``."""

    def node_values(self, sol: NodeSolution) -> dict[str, Any]:
        (mh, qh, vh), eps_g, class_error = self.scalars(sol.step.channel)
        x = sol.iterate["x"]
        return {
            "m": x[0],
            "q": x[1],
            "V": x[2],
            "mh": mh,
            "qh": qh,
            "Vh": vh,
            "eps_g": eps_g,
            "class_error": class_error,
            "bias_sq": sol.iterate["bias"] ** 2,
        }

    def finish(self, avg: dict[str, Any], sols: list[NodeSolution]) -> tuple[dict[str, Any], float]:
        """``order``: ``m, q, V, mh, qh, Vh`` and, with a mean, ``bias_rms`` (averaged over the
        teacher's mean) or ``bias`` (one ``S*``)."""
        order: dict[str, Any] = {k: float(avg[k]) for k in ("m", "q", "V", "mh", "qh", "Vh")}
        if self.has_mean:
            if self.teacher_mean is None:
                order["bias_rms"] = float(np.sqrt(avg["bias_sq"]))
            else:
                order["bias"] = float(sols[0].iterate["bias"])
        beta = self.beta
        return order, order["q"] - 2 * beta * order["m"] + beta**2 * self.rho


class Anderson:
    """Anderson mixing (type II) of a fixed-point iteration, on residuals weighted by the scale.

    ``memory`` past iterates; 0 gives the plain damped step ``y + d g``. A mixed iterate that is
    not finite or not :meth:`FixedPointStudent.admissible` is replaced by the damped step and the
    history is dropped; the caller drops it too (:meth:`reset`) when the residual grows.
    """

    def __init__(self, memory: int) -> None:
        self.memory = memory
        self._ys: list[np.ndarray] = []
        self._gs: list[np.ndarray] = []

    def reset(self) -> None:
        """Forget the history."""
        self._ys.clear()
        self._gs.clear()

    def update(self, student: FixedPointStudent, x: Iterate, step: Step, d: float) -> Iterate:
        """The next iterate after ``x`` with damping ``d``."""
        y, g = student.vector(x, step)
        y_new = y + d * g
        if self.memory > 0:
            self._ys.append(y)
            self._gs.append(g)
            del self._ys[: -self.memory - 1], self._gs[: -self.memory - 1]
            if len(self._ys) > 1:
                wgt = 1.0 / np.maximum(np.abs(y), 1e-6)
                dy = np.diff(np.array(self._ys), axis=0)  # (k, n)
                dg = np.diff(np.array(self._gs), axis=0)
                gamma = np.linalg.lstsq((dg * wgt).T, g * wgt, rcond=None)[0]
                cand = y + d * g - (dy + d * dg).T @ gamma
                if np.all(np.isfinite(cand)) and student.admissible(cand):
                    y_new = cand
                else:
                    self.reset()
        return student.from_vector(y_new, step)


def iterate(
    student: FixedPointStudent, s_star: float, warm: Iterate | None, options: SolverOptions
) -> NodeSolution:
    """Damped (or Anderson-mixed) iteration of the student's map to its fixed point."""
    x = student.start(warm)
    d = options.damping
    prev = np.inf
    residual = np.inf
    converged = False
    message = f"no convergence in {options.max_iter} iterations"
    mixer = Anderson(options.anderson) if student.anderson else None
    step: Step | None = None
    it = 0
    for it in range(1, options.max_iter + 1):  # noqa: B007 (it is reported after the loop)
        step = student.step(x, s_star)
        residual = step.residual
        if not step.finite:
            message = "non-finite iterate"
            break
        if residual < options.tol:
            converged = True
            message = "converged"
            break
        if step.divergence:
            message = step.divergence
            break
        if residual > prev:
            d = max(0.5 * d, options.min_damping)
            if mixer is not None:
                mixer.reset()
        else:
            d = min(1.05 * d, options.damping)
        prev = residual
        x = student.mix(x, step, d) if mixer is None else mixer.update(student, x, step, d)
    assert step is not None  # max_iter >= 1
    return NodeSolution(x, step, it, residual, converged, message)


def integration_errors(
    student: FixedPointStudent, s_star: float, sol: NodeSolution, options: SolverOptions
) -> dict[str, float]:
    """Integration error of the map's ``(m, q, V)`` and of ``eps_g`` at the fixed point.

    Gauss-Hermite: the difference to a rule with 1.5 times as many nodes per axis; QMC: the
    standard error over the scrambles. Empty for a student without rules.
    """
    if student.rules is None or student.dim is None:
        return {}
    ch = sol.step.channel
    xi = student.rules[0]
    if xi.kind == "qmc":
        if xi.n_groups < 2:
            return {}
        g = ch.groups
        maps = np.array(
            [student.summary(g["qh"][k], g["mh"][k], g["vh"][k]) for k in range(xi.n_groups)]
        )
        se = maps.std(axis=0, ddof=1) / np.sqrt(xi.n_groups)
        err = {"m": se[0], "q": se[1], "V": se[2]}
        for key in ("eps_g", "class_error"):
            err[key] = float(g[key].std(ddof=1) / np.sqrt(xi.n_groups))
        return {k: float(v) for k, v in err.items()}
    fine = build_rules(student.dim, options, fine=True)
    chf = student.channel(sol.iterate, s_star, fine)
    diff = np.abs(student.summary(chf.qh, chf.mh, chf.vh) - student.summary(ch.qh, ch.mh, ch.vh))
    return {
        "m": float(diff[0]),
        "q": float(diff[1]),
        "V": float(diff[2]),
        "eps_g": abs(chf.eps_g - ch.eps_g),
        "class_error": abs(chf.class_error - ch.class_error),
    }


def _average(weights: np.ndarray, values: list[Any]) -> Any:
    """``sum_k weights[k] values[k]`` for scalars or arrays."""
    return sum(w * v for w, v in zip(weights, values, strict=True))


def solve_student(
    student: FixedPointStudent,
    *,
    has_mean: bool,
    teacher_mean: float | None,
    rho: float,
    init: ReplicaPoint | None = None,
) -> ReplicaPoint:
    """Solve the student's fixed point at its ``(alpha, lam)``; see the module docstring.

    Args:
        student: the saddle-point equations.
        has_mean: whether the logits carry the teacher's mean ``S*`` (unequal row sums).
        teacher_mean: a fixed ``S*``; ``None`` averages over ``S* ~ N(0, rho)`` when
            ``has_mean`` (and uses ``S* = 0`` otherwise).
        rho: variance of the teacher's weights.
        init: a solved point to start from, node by node.

    Raises:
        ConvergenceError: ``options.strict`` and the iteration did not converge.
    """
    options = student.options
    if has_mean and teacher_mean is None:
        nodes, weights = teacher_mean_nodes(rho, options.teacher_mean_nodes)
    else:
        nodes = np.array([0.0 if teacher_mean is None else float(teacher_mean)])
        weights = np.ones(1)
    prev_states = list(init.state.get("nodes", [])) if init is not None else []
    sols: list[NodeSolution] = []
    for k, s_star in enumerate(nodes):
        if k < len(prev_states):
            warm: Iterate | None = prev_states[k]
        else:
            warm = student.warm_state(sols[-1]) if sols else None
        sols.append(iterate(student, float(s_star), warm, options))
    errs = [
        integration_errors(student, float(s), sol, options) if options.error_estimate else {}
        for s, sol in zip(nodes, sols, strict=True)
    ]
    teach = [student.teacher(float(s)) for s in nodes]
    values = [student.node_values(sol) for sol in sols]
    avg = {key: _average(weights, [v[key] for v in values]) for key in values[0]}
    order, coupling_error = student.finish(avg, sols)
    eps_g = float(avg["eps_g"])
    eps_opt = float(_average(weights, [t[0] for t in teach]))
    keys = sorted({k for e in errs for k in e})
    integration_error = {
        k: float(_average(weights, [e.get(k, np.nan) for e in errs])) for k in keys
    }
    converged = all(s.converged for s in sols)
    rel = relative_error(
        integration_error, {"m": order["m"], "q": order["q"], "V": order["V"], "eps_g": eps_g}
    )
    messages = {s.message for s in sols}
    if rel > options.integration_rtol:
        converged = False
        messages.add(
            f"integration error {rel:.2g} above integration_rtol {options.integration_rtol:g} "
            "(raise gh_nodes or qmc_points / qmc_eta_points)"
        )
    report = FixedPointReport(
        iterations=int(sum(s.iterations for s in sols)),
        residual=float(max(s.residual for s in sols)),
        converged=converged,
        integration=student.integration,
        n_nodes=student.n_nodes,
        integration_error=integration_error,
        message="; ".join(sorted(messages)),
        precision=student.precision,
        relative_integration_error=rel,
    )
    if not converged:
        msg = (
            f"{student.label} fixed point at alpha={student.alpha:g}, lam={student.lam:g} not "
            f"converged: {report.message} (residual {report.residual:.3g}, tol {options.tol:g})"
        )
        if options.strict:
            raise ConvergenceError(msg)
        log.warning(msg)
    return ReplicaPoint(
        alpha=float(student.alpha),
        lam=float(student.lam),
        eps_g=eps_g,
        eps_opt=eps_opt,
        kl=eps_g - eps_opt,
        coupling_error=coupling_error,
        class_error=float(avg["class_error"]),
        class_error_opt=float(_average(weights, [t[1] for t in teach])),
        order=order,
        report=report,
        state={"nodes": [student.warm_state(s) for s in sols]},
    )
