"""Learning curves of the replica theory over grids of ``alpha`` and ``lambda`` (numpy/scipy only)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize_scalar

from ..errors import ValidationError
from ._common import ReplicaPoint, SolverOptions
from .factored import solve_factored
from .full import solve_full
from .ising import solve_ising
from .scenario import Scenario

__all__ = ["LearningCurves", "Student", "learning_curves", "optimal_lambda", "solve_point"]

log = logging.getLogger(__name__)

Student = Literal["factored", "full", "ising"]
STUDENTS: tuple[str, ...] = ("factored", "full", "ising")


def solve_point(
    scenario: Scenario,
    alpha: float,
    lam: float,
    *,
    student: Student = "factored",
    options: SolverOptions | None = None,
    init: ReplicaPoint | None = None,
) -> ReplicaPoint:
    """Solve one point with the solver of ``student``.

    ``"factored"``: :func:`solve_factored` (attention row learned, value matrix fixed);
    ``"full"``: :func:`solve_full` (a free per-site weight matrix, plmDCA row);
    ``"ising"``: :func:`solve_ising` (scalar form, ``q = 2`` only).
    """
    if student == "factored":
        return solve_factored(scenario, alpha, lam, options=options, init=init)
    if student == "full":
        return solve_full(scenario, alpha, lam, options=options, init=init)
    if student == "ising":
        if scenario.q != 2:
            raise ValidationError(
                f"student 'ising' needs q = 2 colours, got q = {scenario.q}; use 'factored'"
            )
        return solve_ising(
            alpha, lam, beta=scenario.beta, rho=scenario.rho, ucol=scenario.ucol, options=options
        )
    raise ValidationError(f"unknown student {student!r}; choose one of {', '.join(STUDENTS)}")


@dataclass
class LearningCurves:
    """Theory on a grid: ``points[i][j]`` is lambda ``lams[i]`` at alpha ``alphas[j]``.

    Attributes:
        alphas: ``(A,)`` increasing; lams: ``(K,)`` as given.
        points: ``K x A`` solved points.
        optimal: per alpha, the lambda minimising ``eps_g`` and its point (``None`` if not asked).
    """

    alphas: np.ndarray
    lams: np.ndarray
    points: list[list[ReplicaPoint]]
    optimal: list[ReplicaPoint] | None = None

    def array(self, key: str) -> np.ndarray:
        """``(K, A)`` array of ``key`` (an attribute such as ``eps_g`` or an order parameter)."""
        out = np.empty((len(self.lams), len(self.alphas)))
        for i, row in enumerate(self.points):
            for j, p in enumerate(row):
                out[i, j] = getattr(p, key) if hasattr(p, key) else p.order[key]
        return out

    @property
    def all_converged(self) -> bool:
        """Whether every point converged."""
        rows = self.points + ([self.optimal] if self.optimal else [])
        return all(p.report.converged for row in rows for p in row)

    def records(self) -> list[dict[str, Any]]:
        """Flat records, one per grid point (and per optimal-lambda point, flagged)."""
        recs = [p.to_dict() for row in self.points for p in row]
        for p in self.optimal or []:
            rec = p.to_dict()
            rec["optimal_lambda"] = True
            recs.append(rec)
        return recs


def _check_grid(values: Sequence[float], name: str, positive: bool) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if arr.size == 0:
        raise ValidationError(f"{name} is empty; give at least one value")
    bad = ~np.isfinite(arr) | ((arr <= 0) if positive else (arr < 0))
    if bad.any():
        raise ValidationError(
            f"{name} must be {'positive' if positive else 'non-negative'} finite numbers, "
            f"got {arr[bad].tolist()}"
        )
    return arr


def learning_curves(
    scenario: Scenario,
    alphas: Sequence[float],
    lams: Sequence[float],
    *,
    student: Student = "factored",
    options: SolverOptions | None = None,
    optimize_lambda: bool = False,
    lambda_bounds: tuple[float, float] = (1e-4, 10.0),
    progress: Callable[[int, int], None] | None = None,
) -> LearningCurves:
    """Solve the theory for every ``(lambda, alpha)``, continuing in increasing ``alpha``.

    Args:
        scenario: the teacher; alphas, lams: grids (alphas are sorted and deduplicated).
        student: which solver (:func:`solve_point`).
        optimize_lambda: also find, at each alpha, the lambda in ``lambda_bounds`` minimising
            ``eps_g`` (bounded Brent search in ``log lambda``, tolerance 1e-3 in ``log``).
        progress: called as ``progress(done, total)`` after each grid point.
    """
    a = np.unique(_check_grid(alphas, "alphas", positive=True))
    lam_arr = _check_grid(lams, "lams", positive=False)
    total = len(a) * len(lam_arr)
    points: list[list[ReplicaPoint]] = []
    done = 0
    for lam in lam_arr:
        row: list[ReplicaPoint] = []
        prev: ReplicaPoint | None = None
        for alpha in a:
            p = solve_point(
                scenario, float(alpha), float(lam), student=student, options=options, init=prev
            )
            row.append(p)
            prev = p if p.report.converged else None
            done += 1
            if progress is not None:
                progress(done, total)
        points.append(row)
    optimal = None
    if optimize_lambda:
        optimal = []
        prev = None
        for alpha in a:
            best = optimal_lambda(
                scenario,
                float(alpha),
                student=student,
                options=options,
                bounds=lambda_bounds,
                init=prev,
            )
            optimal.append(best)
            prev = best
    return LearningCurves(alphas=a, lams=lam_arr, points=points, optimal=optimal)


def optimal_lambda(
    scenario: Scenario,
    alpha: float,
    *,
    student: Student = "factored",
    options: SolverOptions | None = None,
    bounds: tuple[float, float] = (1e-4, 10.0),
    init: ReplicaPoint | None = None,
) -> ReplicaPoint:
    """The point at ``alpha`` whose lambda (within ``bounds``) minimises ``eps_g``.

    A bounded Brent search over ``log lambda``; if the minimum sits at a bound, the bound is
    returned (and logged): the optimum lies outside the search interval.
    """
    lo, hi = bounds
    if not (0 < lo < hi):
        raise ValidationError(f"lambda bounds must satisfy 0 < lo < hi, got {bounds}")
    cache: dict[float, ReplicaPoint] = {}
    state = {"init": init}

    def eps(loglam: float) -> float:
        p = solve_point(
            scenario, alpha, math.exp(loglam), student=student, options=options, init=state["init"]
        )
        cache[loglam] = p
        if p.report.converged:
            state["init"] = p
            return p.eps_g
        return math.inf

    res = minimize_scalar(
        eps, bounds=(math.log(lo), math.log(hi)), method="bounded", options={"xatol": 1e-3}
    )
    best_key = min(cache, key=lambda k: cache[k].eps_g if cache[k].report.converged else np.inf)
    best = cache[best_key]
    if abs(float(res.x) - math.log(lo)) < 1e-2 or abs(float(res.x) - math.log(hi)) < 1e-2:
        log.info("optimal lambda at alpha=%g lies at the search bound %g", alpha, best.lam)
    return best
