"""The replica solvers give the same numbers as when the pinned values were recorded.

``data/replica_regression.json`` holds learning-curve points of the three students (factored,
full, scalar Ising), with and without continuation in ``alpha``, Gauss-Hermite and QMC
integration, equal and unequal row sums of ``Ucol`` (teacher mean averaged or fixed), and one
optimal-lambda search. It was written by ``python tests/theory/test_replica_regression.py``
before the solvers were restructured; a refactoring must reproduce it to 1e-9 (relative).

The tolerances separate rounding from a change of the equations. Another numpy, scipy or BLAS
build (numpy 2.2 with scipy 1.15, 2.4 with 1.17 and 2.5 with 1.18) moves the order parameters and
errors by up to 2e-11 relative, entries that are zero by symmetry by 1e-17 absolute, and the
solver's own diagnostics (the final residual and the integration-error estimates, themselves
rounding-level numbers) by up to 2e-7 relative or 1e-16 absolute; a changed equation moves the
values by far more than 1e-9. The full and factored students' cases were re-pinned when their
bases became explicit (``centering_basis`` and ``Scenario.readout``): before, they were whatever
the LAPACK build's SVD or eigendecomposition returned for a degenerate subspace, and the
quadrature nodes moved with them.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from attnpotts.theory import (
    Scenario,
    SolverOptions,
    learning_curves,
    make_ucol,
    optimal_lambda,
    solve_factored,
    solve_ising,
)
from attnpotts.theory.curves import Student

DATA = Path(__file__).parent / "data" / "replica_regression.json"
RTOL = 1e-9  # order parameters, errors, matrices
ATOL = 1e-13  # entries that are zero up to rounding (off-diagonals of order 1e-17)
DIAGNOSTIC_RTOL = 1e-3  # the final residual and the integration-error estimates,
DIAGNOSTIC_ATOL = 1e-12  # which may also be rounding itself (3e-16 against 4e-16)

UNEQUAL_2 = [[1.0, -0.4], [-0.4, 0.2]]


def _curve(
    ucol: Any, beta: float, alphas: list[float], lams: list[float], student: Student, **opts: Any
) -> list[dict[str, Any]]:
    scn = Scenario(np.asarray(ucol, dtype=float), beta=beta)
    curves = learning_curves(scn, alphas, lams, student=student, options=SolverOptions(**opts))
    return curves.records()


def _cases() -> dict[str, Any]:
    """Every pinned case: name -> a function returning its list of records."""
    gauss3 = make_ucol("gaussian", 3, seed=1).tolist()
    return {
        "factored_q3_identity": lambda: _curve(np.eye(3), 2.0, [0.5, 2.0], [0.1], "factored"),
        "factored_q3_gaussian_mean": lambda: _curve(
            gauss3, 2.0, [1.0], [0.3], "factored", teacher_mean_nodes=3, gh_nodes=12
        ),
        "factored_q5_qmc": lambda: _curve(
            np.eye(5),
            3.0,
            [1.0],
            [0.5],
            "factored",
            qmc_points=64,
            qmc_eta_points=64,
            qmc_randomizations=4,
        ),
        "factored_fixed_teacher_mean": lambda: [
            solve_factored(
                Scenario(np.asarray(UNEQUAL_2), beta=3.0), 2.0, 0.1, teacher_mean=0.7
            ).to_dict()
        ],
        "factored_q4_qmc_8_scrambles": lambda: _curve(
            np.eye(4), 2.0, [2.0], [0.3], "factored", qmc_points=64, qmc_eta_points=64
        ),
        "full_q4_qmc_8_scrambles": lambda: _curve(
            np.eye(4), 2.0, [2.0], [0.3], "full", qmc_points=64, qmc_eta_points=64
        ),
        "full_q3_identity": lambda: _curve(np.eye(3), 2.0, [0.5, 2.0], [0.1], "full"),
        "full_q3_gaussian_mean": lambda: _curve(
            gauss3, 2.0, [1.0], [0.3], "full", teacher_mean_nodes=3, gh_nodes=10
        ),
        "ising_identity": lambda: _curve(np.eye(2), 2.0, [0.5, 2.0], [0.1, 1.0], "ising"),
        "ising_unequal": lambda: _curve(UNEQUAL_2, 3.0, [2.0], [0.1], "ising"),
        "ising_fixed_teacher_mean": lambda: [
            solve_ising(2.0, 0.1, beta=3.0, ucol=np.asarray(UNEQUAL_2), teacher_mean=0.7).to_dict()
        ],
        "optimal_lambda_q2": lambda: [optimal_lambda(Scenario(np.eye(2), beta=2.0), 1.0).to_dict()],
    }


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists -> ``{"a.b.0": leaf}``."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(obj, list | tuple):
        out = {}
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}{i}."))
        return out
    return {prefix[:-1]: obj}


def _same(key: str, got: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(got, float | int):
        if math.isnan(want):
            return math.isnan(got)
        parts = key.split(".")
        if "residual" in parts or "integration_error" in parts:
            return math.isclose(got, want, rel_tol=DIAGNOSTIC_RTOL, abs_tol=DIAGNOSTIC_ATOL)
        return math.isclose(got, want, rel_tol=RTOL, abs_tol=ATOL)
    return bool(got == want)


@pytest.mark.parametrize("name", sorted(_cases()))
def test_replica_points_unchanged(name: str) -> None:
    want = json.loads(DATA.read_text())[name]
    got = json.loads(json.dumps(_cases()[name]()))
    flat_got, flat_want = _flatten(got), _flatten(want)
    assert sorted(flat_got) == sorted(flat_want), "the records' keys changed"
    bad = [
        f"{k}: {flat_got[k]!r} != {flat_want[k]!r}"
        for k in flat_want
        if not _same(k, flat_got[k], flat_want[k])
    ]
    assert not bad, f"{name}: {len(bad)} values changed:\n" + "\n".join(bad[:20])


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit(
            "usage: python tests/theory/test_replica_regression.py --write (re-pins the values)"
        )
    DATA.write_text(json.dumps({k: f() for k, f in _cases().items()}, indent=1) + "\n")
    print(f"wrote {DATA}")
