"""Replica theory of the generalization error of factored attention (numpy/scipy only).

The scenario of ``docs/theory.md``: one masked site, ``N`` other i.i.d. uniform spins, a teacher
attention row ``w* ~ N(0, rho)`` with value matrix ``Ucol``, labels from ``softmax(beta z*)``.

* :class:`Scenario` - the teacher; :func:`make_ucol` - value matrices.
* :func:`solve_factored` - replica-symmetric fixed point of the factored student (any ``q``,
  any symmetric ``Ucol``, with the mean order parameter for unequal row sums).
* :func:`solve_ising` - the ``q = 2`` case in scalar form (logistic regression).
* :func:`solve_full` - matrix order parameters for a full per-site student (plmDCA row).
* :func:`learning_curves`, :func:`optimal_lambda` - grids in ``alpha`` and ``lambda``.
* :func:`simulate` - finite-``N`` simulations of the same scenario with a convex solver.
"""

from ._common import FixedPointReport, ReplicaPoint, SolverOptions
from .curves import LearningCurves, learning_curves, optimal_lambda, solve_point
from .factored import solve_factored
from .full import solve_full
from .ising import solve_ising
from .scenario import Scenario, centering_basis, make_ucol
from .simulation import (
    SIM_STUDENTS,
    ScenarioData,
    SimulationPoint,
    StudentFit,
    fit_convex,
    fit_full,
    generate_data,
    simulate,
    simulate_seed,
)

__all__ = [
    "SIM_STUDENTS",
    "FixedPointReport",
    "LearningCurves",
    "ReplicaPoint",
    "Scenario",
    "ScenarioData",
    "SimulationPoint",
    "SolverOptions",
    "StudentFit",
    "centering_basis",
    "fit_convex",
    "fit_full",
    "generate_data",
    "learning_curves",
    "make_ucol",
    "optimal_lambda",
    "simulate",
    "simulate_seed",
    "solve_factored",
    "solve_full",
    "solve_ising",
    "solve_point",
]
