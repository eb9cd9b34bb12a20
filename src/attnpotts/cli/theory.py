"""``attnpotts theory``: replica learning curves of factored attention, optionally with simulations."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataFormatError, ValidationError
from ..storage import (
    atomic_output_dir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    environment_info,
    inspect_npy,
)
from .common import add_common_arguments, resolve_config

__all__ = ["parse_alphas", "register", "run"]

_EPILOG = """examples:
  attnpotts theory --out runs/theory
      q = 3, Ucol = identity, beta = 3, lambda = 0.1, rho = 1, 16 alphas from 0.5 to 8
  attnpotts theory --states 5 --beta 1 --lam 0.01 0.1 1 --alpha 0.25:16:24 --out runs/q5
  attnpotts theory --lam 0.1 1 --alpha 0.5 1 2 4 8 --simulate 500 --seeds 4 --out runs/check
      theory lines against simulations at N = 500 (convex L-BFGS student, 4 teachers)
  attnpotts theory --student full --ucol gaussian --optimal-lambda --out runs/full
  attnpotts theory --config theory.toml --out runs/x --overwrite
      theory.toml holds the same options with underscores, e.g. lam = [0.1, 1.0]

--alpha takes numbers and ranges START:STOP:COUNT (COUNT values spaced geometrically).
output folder: theory.tsv (one row per point), summary.json (a list `points`: alpha, lambda,
eps_g, eps_opt, kl, coupling and classification errors, order parameters and conjugates, the
convergence report and, with --simulate, the simulation mean and standard error), theory.png
(theory lines against simulation points), config.json. Exit status 1 if a point did not converge.
"""

_DEFAULTS: dict[str, Any] = {
    "states": 3,
    "beta": 3.0,
    "lam": [0.1],
    "alpha": ["0.5:8:16"],
    "rho": 1.0,
    "ucol": "identity",
    "ucol_seed": 0,
    "student": "factored",
    "optimal_lambda": False,
    "simulate": 0,
    "seeds": 4,
    "sim_student": None,
    "n_test": 20000,
    "tol": 1e-7,
    "integration": "auto",
}

_TSV_COLUMNS = (
    "alpha",
    "lambda",
    "eps_g",
    "eps_opt",
    "kl",
    "coupling_error",
    "class_error",
    "class_error_opt",
    "m",
    "q",
    "V",
    "mh",
    "qh",
    "Vh",
    "iterations",
    "residual",
    "converged",
    "sim_eps_g",
    "sim_eps_g_se",
    "sim_kl",
    "sim_kl_se",
    "sim_m",
    "sim_m_se",
    "sim_q",
    "sim_q_se",
)


def parse_alphas(tokens: list[Any]) -> list[float]:
    """Turn numbers and ``START:STOP:COUNT`` ranges (geometric spacing) into sorted alphas."""
    values: list[float] = []
    for tok in tokens:
        text = str(tok).strip()
        if ":" in text:
            parts = text.split(":")
            try:
                if len(parts) != 3:
                    raise ValueError
                start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
            except ValueError:
                raise ValidationError(
                    f"bad alpha range {text!r}: expected START:STOP:COUNT, e.g. 0.5:8:16"
                ) from None
            if not (0 < start <= stop) or count < 1 or (count == 1 and start != stop):
                raise ValidationError(
                    f"bad alpha range {text!r}: need 0 < START <= STOP and COUNT >= 1 "
                    "(COUNT = 1 only when START = STOP)"
                )
            values.extend(np.geomspace(start, stop, count).tolist())
        else:
            try:
                v = float(text)
            except ValueError:
                raise ValidationError(
                    f"bad alpha {text!r}: expected a number or START:STOP:COUNT"
                ) from None
            if not (math.isfinite(v) and v > 0):
                raise ValidationError(f"alpha must be positive, got {text!r}")
            values.append(v)
    if not values:
        raise ValidationError("no alpha given; pass --alpha with numbers or START:STOP:COUNT")
    return sorted(set(values))


#: Largest |Ucol| entry read from a file (logits beta * U * field must stay far from overflow).
_MAX_UCOL = 1e6


def _ucol(spec: str, q: int, seed: int) -> np.ndarray:
    from ..theory import make_ucol

    if spec in ("identity", "gaussian"):
        return make_ucol(spec, q, seed)
    path = Path(spec)
    if path.suffix != ".npy":
        raise ValidationError(f"--ucol must be identity, gaussian or a .npy file, got {spec!r}")
    shape, dtype = inspect_npy(path)  # checked before anything is read
    if shape != (q, q):
        raise DataFormatError(f"Ucol has shape {shape}, expected ({q}, {q}) for --states {q}", path=path)
    if dtype.kind not in "fiu":
        raise DataFormatError(f"Ucol has dtype {dtype}; expected real numbers (float)", path=path)
    try:
        u = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataFormatError(f"cannot read a numpy array ({exc})", path=path) from exc
    u = np.asarray(u, dtype=float)
    if not np.isfinite(u).all() or np.abs(u).max() > _MAX_UCOL:
        raise DataFormatError(
            f"Ucol entries must be finite numbers with |U| <= {_MAX_UCOL:g} (larger values only "
            "overflow the solver); rescale the matrix or lower --beta",
            path=path,
        )
    return u


def register(sub: Any) -> argparse.ArgumentParser:
    """Add the ``theory`` subcommand to ``sub``."""
    p = sub.add_parser(
        "theory",
        help="replica theory of the generalization error (with optional simulations)",
        description=(
            "Solve the replica-symmetric saddle point of the model scenario (one masked site, "
            "N i.i.d. uniform spins, teacher row w* ~ N(0, rho), value matrix Ucol, labels from "
            "softmax(beta z*)) over a grid of alpha = M/N and lambda; optionally simulate it."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(p, device=True)
    g = p.add_argument_group("scenario")
    g.add_argument("--states", type=int, default=None, help="q colours (default 3)")
    g.add_argument("--beta", type=float, default=None, help="teacher inverse temperature (3)")
    g.add_argument("--rho", type=float, default=None, help="variance of w* (default 1)")
    g.add_argument(
        "--ucol", default=None, help="identity (default), gaussian, or a (q, q) symmetric FILE.npy"
    )
    g.add_argument(
        "--ucol-seed",
        dest="ucol_seed",
        type=int,
        default=None,
        help="seed of --ucol gaussian (default 0)",
    )
    g = p.add_argument_group("grid")
    g.add_argument(
        "--lam",
        type=float,
        nargs="+",
        default=None,
        help="L2 strengths (several allowed; default 0.1)",
    )
    g.add_argument(
        "--alpha",
        nargs="+",
        default=None,
        help="alphas: numbers and/or START:STOP:COUNT (default 0.5:8:16)",
    )
    g.add_argument(
        "--student",
        choices=["factored", "full", "ising"],
        default=None,
        help="factored (default), full per-site matrix (plmDCA row), ising (q = 2)",
    )
    g.add_argument(
        "--optimal-lambda",
        dest="optimal_lambda",
        action="store_const",
        const=True,
        default=None,
        help="also find the eps_g-optimal lambda at each alpha",
    )
    g.add_argument("--tol", type=float, default=None, help="fixed-point tolerance (1e-7)")
    g.add_argument(
        "--integration",
        choices=["auto", "gauss-hermite", "qmc"],
        default=None,
        help="Gaussian integration rule (default auto)",
    )
    g = p.add_argument_group("simulation")
    g.add_argument(
        "--simulate",
        type=int,
        default=None,
        metavar="N",
        help="also simulate with N sites (0 = no simulation, the default)",
    )
    g.add_argument("--seeds", type=int, default=None, help="teachers per point (default 4)")
    g.add_argument(
        "--sim-student",
        dest="sim_student",
        choices=["convex", "full", "attention"],
        default=None,
        help="simulated student: convex (L-BFGS on the attention row), attention (the project's "
        "factored-attention training loop, value matrix fixed; slow, N <= ~200), full "
        "(per-site matrix); default convex for factored/ising, full for full",
    )
    g.add_argument(
        "--n-test",
        dest="n_test",
        type=int,
        default=None,
        help="test inputs per teacher (default 20000)",
    )
    p.set_defaults(func=run)
    return p


def _tsv(points: list[dict[str, Any]]) -> str:
    lines = ["\t".join(_TSV_COLUMNS)]
    for p in points:
        sim = p.get("simulation") or {}
        mean, se = sim.get("mean", {}), sim.get("stderr", {})
        row = dict(p)
        for key in ("eps_g", "kl", "m", "q"):
            row[f"sim_{key}"] = mean.get(key)
            row[f"sim_{key}_se"] = se.get(key)
        cells = []
        for col in _TSV_COLUMNS:
            v = row.get(col)
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                cells.append("nan")
            elif isinstance(v, bool):
                cells.append(str(v).lower())
            elif isinstance(v, float):
                cells.append(f"{v:.10g}")
            else:
                cells.append(str(v))
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Run ``attnpotts theory``; return 0, or 1 if a point did not converge."""
    from ..plotting import figure_to_png
    from ..plotting.theory import plot_theory_curves
    from ..theory import Scenario, SolverOptions, learning_curves, simulate

    cfg = resolve_config(args, _DEFAULTS)
    q = int(cfg["states"])
    if q < 2:
        raise ValidationError(f"--states must be >= 2, got {q}")
    alphas = parse_alphas(list(cfg["alpha"]) if isinstance(cfg["alpha"], list) else [cfg["alpha"]])
    lams = [float(x) for x in (cfg["lam"] if isinstance(cfg["lam"], list) else [cfg["lam"]])]
    student = str(cfg["student"])
    if student not in ("factored", "full", "ising"):
        raise ValidationError(f"student must be factored, full or ising, got {student!r}")
    n_sim = int(cfg["simulate"])
    if n_sim < 0 or (0 < n_sim < 2):
        raise ValidationError(f"--simulate needs N >= 2 sites (or 0 for none), got {n_sim}")
    sim_student = cfg["sim_student"] or ("full" if student == "full" else "convex")
    scenario = Scenario(
        _ucol(str(cfg["ucol"]), q, int(cfg["ucol_seed"])), float(cfg["beta"]), float(cfg["rho"])
    )
    options = SolverOptions(
        tol=float(cfg["tol"]), integration=cfg["integration"], seed=int(cfg["seed"])
    )
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise FileExistsError(
            f"output folder {out} exists and is not empty; choose another --out or pass --overwrite"
        )
    t0 = time.perf_counter()
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if args.no_progress:
            return
        if bar is None:
            from ..progress import Progress

            bar = Progress(total, "theory", unit="points")
        bar.set(done, total)

    try:
        curves = learning_curves(
            scenario,
            alphas,
            lams,
            student=student,  # type: ignore[arg-type]
            options=options,
            optimize_lambda=bool(cfg["optimal_lambda"]),
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    t_theory = time.perf_counter() - t0
    points = [p.to_dict() for row in curves.points for p in row]
    if n_sim:
        sim_fit: Any = sim_student
        if sim_student == "attention":
            from functools import partial

            from ..experiments.attention_student import fit_attention

            sim_fit = partial(fit_attention, device=getattr(args, "device", None) or "cpu")
        for lam in lams:
            sims = simulate(
                scenario,
                curves.alphas.tolist(),
                lam,
                n_sim,
                n_seeds=int(cfg["seeds"]),
                student=sim_fit,
                n_test=int(cfg["n_test"]),
                seed=int(cfg["seed"]),
            )
            for sp in sims:
                for rec in points:
                    if rec["lambda"] == lam and math.isclose(rec["alpha"], sp.alpha):
                        rec["simulation"] = dict(sp.to_dict(), student=sim_student)
    t_total = time.perf_counter() - t0
    optimal = [p.to_dict() for p in curves.optimal] if curves.optimal else []
    summary = {
        "command": "theory",
        "scenario": scenario.to_dict(),
        "student": student,
        "simulation_student": sim_student if n_sim else None,
        "all_converged": curves.all_converged,
        "points": points,
        "optimal_lambda": optimal,
        "timings_s": {"theory": t_theory, "total": t_total},
    }
    config = dict(cfg)
    config["alpha_values"] = list(curves.alphas)
    config["environment"] = environment_info()
    with atomic_output_dir(out, overwrite=args.overwrite) as tmp:
        atomic_write_text(tmp / "theory.tsv", _tsv(points))
        atomic_write_json(tmp / "summary.json", summary)
        atomic_write_json(tmp / "config.json", config)
        plot_points = points + [dict(p, optimal_lambda=True) for p in optimal]
        title = (
            f"q = {q}, Ucol = {cfg['ucol']}, beta = {scenario.beta:g}, rho = "
            f"{scenario.rho:g}, {student} student"
        )
        fig = plot_theory_curves(plot_points, title=title)
        atomic_write_bytes(tmp / "theory.png", figure_to_png(fig))
    print(f"attnpotts theory -> {out}")
    print(
        f"  scenario   q={q} Ucol={cfg['ucol']} beta={scenario.beta:g} rho={scenario.rho:g} "
        f"student={student}"
    )
    for rec in points:
        sim = rec.get("simulation")
        extra = ""
        if sim:
            extra = f"   sim {sim['mean']['eps_g']:.4f} +- {sim['stderr']['eps_g']:.4f}"
        flag = "" if rec["converged"] else "   NOT CONVERGED"
        print(
            f"  alpha={rec['alpha']:<8.4g} lambda={rec['lambda']:<8.4g} eps_g={rec['eps_g']:.5f}"
            f" (opt {rec['eps_opt']:.5f}){extra}{flag}"
        )
    for rec in optimal:
        print(
            f"  optimal lambda at alpha={rec['alpha']:.4g}: {rec['lambda']:.4g} "
            f"(eps_g {rec['eps_g']:.5f})"
        )
    print(f"  time       {t_total:.1f} s")
    return 0 if curves.all_converged else 1
