"""Benchmark: a 30-point replica learning curve (target: under 30 s).

Times the factored-student theory over 30 alphas (0.5 to 8, geometric) with continuation in
alpha, against the same 30 points solved from a cold start (the baseline, same run), for
q = 2 (Gauss-Hermite 1D), q = 3 (Gauss-Hermite 2D) and q = 5 (randomized QMC, 8 points only:
the QMC solver is much slower), plus the scalar Ising solver at q = 2. Prints a table and
writes benchmarks/results/bench_theory.json.

Usage: python benchmarks/bench_theory.py [--quick]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from attnpotts.storage import atomic_write_json, environment_info
from attnpotts.theory import Scenario, learning_curves, solve_factored, solve_ising


def _curve(q: int, alphas: np.ndarray) -> tuple[float, bool, int]:
    scn = Scenario(np.eye(q), beta=3.0, rho=1.0)
    t0 = time.perf_counter()
    curves = learning_curves(scn, alphas, [0.1])
    dt = time.perf_counter() - t0
    its = sum(p.report.iterations for p in curves.points[0])
    return dt, curves.all_converged, its


def _cold(q: int, alphas: np.ndarray) -> float:
    scn = Scenario(np.eye(q), beta=3.0, rho=1.0)
    t0 = time.perf_counter()
    for a in alphas:
        solve_factored(scn, float(a), 0.1)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the q = 5 and cold runs")
    args = parser.parse_args()
    alphas = np.geomspace(0.5, 8.0, 30)
    rows = []
    for q, grid in ((2, alphas), (3, alphas), (5, np.geomspace(0.5, 8.0, 8))):
        if args.quick and q == 5:
            continue
        dt, ok, its = _curve(q, grid)
        cold = float("nan") if args.quick else _cold(q, grid)
        rows.append(
            {
                "q": q,
                "points": len(grid),
                "seconds": dt,
                "cold_seconds": cold,
                "speedup_vs_cold": cold / dt,
                "iterations": its,
                "all_converged": ok,
                "seconds_per_point": dt / len(grid),
            }
        )
    t0 = time.perf_counter()
    for a in alphas:
        solve_ising(float(a), 0.1, beta=3.0)
    t_ising = time.perf_counter() - t0
    rows.append(
        {
            "q": 2,
            "points": 30,
            "seconds": t_ising,
            "solver": "ising (scalar)",
            "seconds_per_point": t_ising / 30,
        }
    )
    print(f"{'case':<22}{'points':>7}{'time s':>9}{'cold s':>9}{'ratio':>7}{'iters':>7}  conv")
    for r in rows:
        name = r.get("solver", f"factored q={r['q']}")
        print(
            f"{name:<22}{r['points']:>7}{r['seconds']:>9.2f}{r.get('cold_seconds', np.nan):>9.2f}"
            f"{r.get('speedup_vs_cold', np.nan):>7.2f}{r.get('iterations', 0):>7}  "
            f"{r.get('all_converged', '')}"
        )
    target = next(r for r in rows if r["q"] == 3 and "solver" not in r)
    print(f"30-point curve (q = 3): {target['seconds']:.1f} s (target < 30 s)")
    out = Path(__file__).parent / "results" / "bench_theory.json"
    atomic_write_json(out, {"benchmark": "theory", "rows": rows, "environment": environment_info()})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
