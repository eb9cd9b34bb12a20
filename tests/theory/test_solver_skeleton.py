"""The shared fixed-point skeleton of the replica solvers, on a toy linear map.

The toy student's map is ``F(x) = A x + c`` (a contraction with known fixed point), so the
skeleton's iteration, Anderson mixing, stopping reasons and report can be checked exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from attnpotts.errors import ConvergenceError
from attnpotts.theory import SolverOptions
from attnpotts.theory._solver import FixedPointStudent, Iterate, NodeSolution, Step, solve_student

A = np.array([[0.9, 0.05, 0.0], [0.0, 0.8, 0.1], [0.02, 0.0, 0.95]])
C = np.array([0.3, 1.0, 0.2])
FIXED = np.linalg.solve(np.eye(3) - A, C)


class _Linear(FixedPointStudent):
    label = "toy"

    def __init__(self, options: SolverOptions, *, anderson: bool, blow_up: float = 0.0) -> None:
        super().__init__(1.0, 0.1, options, None)
        self.anderson = anderson
        self.blow_up = blow_up  # F multiplies x by this much more each step (divergence)

    def start(self, warm: Iterate | None) -> Iterate:
        return {"x": np.array(warm["x"]) if warm else np.ones(3)}

    def step(self, x: Iterate, s_star: float) -> Step:
        xn = A @ x["x"] + C + s_star + self.blow_up * x["x"]
        scale = np.maximum(np.maximum(np.abs(x["x"]), np.abs(xn)), 1e-10)
        residual = float(np.max(np.abs(xn - x["x"]) / scale))
        div = "diverged: toy" if np.abs(xn).max() > 1e6 else ""
        return Step({"eps_g": xn[0]}, {"x": xn}, residual, bool(np.all(np.isfinite(xn))), div)

    def mix(self, x: Iterate, step: Step, damping: float) -> Iterate:
        return {"x": (1 - damping) * x["x"] + damping * step.target["x"]}

    def vector(self, x: Iterate, step: Step) -> tuple[np.ndarray, np.ndarray]:
        return x["x"], step.target["x"] - x["x"]

    def from_vector(self, y: np.ndarray, step: Step) -> Iterate:
        return {"x": y}

    def admissible(self, y: np.ndarray) -> bool:
        return True

    def warm_state(self, sol: NodeSolution) -> Iterate:
        return {"x": sol.iterate["x"]}

    def node_values(self, sol: NodeSolution) -> dict[str, Any]:
        x = sol.iterate["x"]
        return {"m": x[0], "q": x[1], "V": x[2], "eps_g": x[0], "class_error": 0.0, "x": x}

    def teacher(self, s_star: float) -> tuple[float, float]:
        return 0.0, 0.0

    def finish(self, avg: dict[str, Any], sols: list[NodeSolution]) -> tuple[dict[str, Any], float]:
        return {"m": float(avg["m"]), "q": float(avg["q"]), "V": float(avg["V"])}, 0.0


@pytest.mark.parametrize("anderson", [False, True])
def test_skeleton_finds_the_fixed_point(anderson: bool) -> None:
    opts = SolverOptions(tol=1e-12, max_iter=5000)
    p = solve_student(_Linear(opts, anderson=anderson), has_mean=False, teacher_mean=None, rho=1)
    assert p.report.converged and p.report.message == "converged"
    np.testing.assert_allclose([p.order["m"], p.order["q"], p.order["V"]], FIXED, rtol=1e-9)
    assert np.isnan(p.report.precision) and p.report.integration_error == {}


def test_anderson_needs_fewer_iterations_than_damping() -> None:
    opts = SolverOptions(tol=1e-10, max_iter=5000)
    plain = solve_student(_Linear(opts, anderson=False), has_mean=False, teacher_mean=None, rho=1)
    mixed = solve_student(_Linear(opts, anderson=True), has_mean=False, teacher_mean=None, rho=1)
    assert mixed.report.iterations < plain.report.iterations / 3


def test_teacher_mean_average_and_warm_start() -> None:
    # S* shifts the map by s_star; the average over S* ~ N(0, rho) of the fixed point is FIXED.
    opts = SolverOptions(tol=1e-12, max_iter=5000, teacher_mean_nodes=5)
    p = solve_student(_Linear(opts, anderson=True), has_mean=True, teacher_mean=None, rho=2.0)
    np.testing.assert_allclose(p.order["m"], FIXED[0], rtol=1e-9)
    assert len(p.state["nodes"]) == 5
    again = solve_student(
        _Linear(opts, anderson=True), has_mean=True, teacher_mean=None, rho=2.0, init=p
    )
    assert again.report.iterations <= 5 * 2  # every node starts at its own fixed point


def test_stopping_reasons_are_reported_or_raised() -> None:
    opts = SolverOptions(max_iter=3)
    p = solve_student(_Linear(opts, anderson=False), has_mean=False, teacher_mean=None, rho=1)
    assert not p.report.converged and "no convergence in 3 iterations" in p.report.message
    blow = _Linear(SolverOptions(), anderson=False, blow_up=1.0)
    p = solve_student(blow, has_mean=False, teacher_mean=None, rho=1)
    assert not p.report.converged and p.report.message == "diverged: toy"
    strict = _Linear(SolverOptions(max_iter=3, strict=True), anderson=False)
    with pytest.raises(
        ConvergenceError, match=r"toy fixed point at alpha=1, lam=0\.1 not converged"
    ):
        solve_student(strict, has_mean=False, teacher_mean=None, rho=1)
