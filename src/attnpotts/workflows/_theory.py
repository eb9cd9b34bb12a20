"""The ``theory`` workflow: replica learning curves over a grid, optionally with simulations."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import DataFormatError, ValidationError
from ..options import OptionSpec, boolean, choice, integer, number, number_list, text
from ..storage import inspect_npy
from .resources import memory_limit

__all__ = ["TheoryOptions", "TheoryRun", "make_scenario", "parse_alphas", "theory"]

_SCENARIO, _GRID, _SIMULATION = "scenario", "grid", "simulation"


@dataclass(frozen=True)
class TheoryOptions:
    """Every option of ``attnpotts theory`` (the names are the TOML keys; flags with dashes)."""

    states: int = integer(3, 2, group=_SCENARIO, help="q colours")
    beta: float = number(3.0, 0, group=_SCENARIO, help="teacher inverse temperature")
    rho: float = number(1.0, 0, low_open=True, group=_SCENARIO, help="variance of w*")
    ucol: str = text(
        "identity", group=_SCENARIO, help="identity, gaussian, or a (q, q) symmetric FILE.npy"
    )
    ucol_seed: int = integer(0, 0, 2**63 - 1, group=_SCENARIO, help="seed of --ucol gaussian")
    lam: tuple[float, ...] = number_list(
        (0.1,), OptionSpec("float", low=0), group=_GRID, help="L2 strengths (several allowed)"
    )
    alpha: tuple[Any, ...] = number_list(
        ("0.5:8:16",), OptionSpec("str"), group=_GRID,
        help="alphas: numbers and/or START:STOP:COUNT (COUNT values spaced geometrically)",
    )
    student: Literal["factored", "full", "ising"] = choice(
        "factored", ("factored", "full", "ising"), group=_GRID,
        help="factored, full per-site matrix (plmDCA row), ising (q = 2)",
    )
    optimal_lambda: bool = boolean(
        False, group=_GRID, help="also find the eps_g-optimal lambda at each alpha"
    )
    tol: float = number(1e-7, 0, low_open=True, group=_GRID, help="fixed-point tolerance")
    integration: Literal["auto", "gauss-hermite", "qmc"] = choice(
        "auto", ("auto", "gauss-hermite", "qmc"), group=_GRID, help="Gaussian integration rule"
    )
    simulate: int = integer(
        0, 0, group=_SIMULATION, metavar="N",
        help="also simulate with N sites (0 = no simulation)",
    )
    seeds: int = integer(4, 1, group=_SIMULATION, help="teachers per point")
    sim_student: Literal["convex", "full", "attention"] | None = choice(
        None, ("convex", "full", "attention"), none=True, group=_SIMULATION,
        help="simulated student: convex (L-BFGS on the attention row), attention (the project's "
        "factored-attention training loop, value matrix fixed; slow, N <= ~200), full "
        "(per-site matrix); default convex for factored/ising, full for full",
    )
    n_test: int = integer(20000, 1, group=_SIMULATION, help="test inputs per teacher")
    device: str | None = text(None, none=True, flag="", help="torch device of --sim-student attention")
    seed: int = integer(0, 0, 2**63 - 1, flag="", help="seed of the solver and the simulations")
    memory_limit_gb: float = memory_limit()

    def __post_init__(self) -> None:
        from ..options.spec import frozen_tuples, validate

        for name in ("lam", "alpha"):  # one value is a list of one
            value = getattr(self, name)
            if not isinstance(value, list | tuple):
                object.__setattr__(self, name, (value,))
        frozen_tuples(self)
        validate(self)
        if 0 < self.simulate < 2:
            raise ValidationError(f"--simulate needs N >= 2 sites (or 0 for none), got {self.simulate}")

    def alphas(self) -> list[float]:
        """The sorted alphas of :attr:`alpha` (ranges expanded)."""
        return parse_alphas(list(self.alpha))

    def lambdas(self) -> list[float]:
        """The L2 strengths as floats."""
        return [float(x) for x in self.lam]

    def simulation_student(self) -> str:
        """The simulated student (``sim_student`` or the default for ``student``)."""
        return self.sim_student or ("full" if self.student == "full" else "convex")


TSV_COLUMNS = (
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


def read_ucol(spec: str, q: int, seed: int) -> np.ndarray:
    """The ``(q, q)`` value matrix: ``identity``, ``gaussian`` (from ``seed``) or a ``.npy`` file."""
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


def make_scenario(ucol: str, q: int, beta: float, rho: float = 1.0, ucol_seed: int = 0) -> Any:
    """The replica :class:`~attnpotts.theory.Scenario` of ``theory`` and of the reproduce
    theory stage (``ucol``: ``identity``, ``gaussian`` or a ``.npy`` file)."""
    from ..theory import Scenario

    return Scenario(read_ucol(str(ucol), int(q), int(ucol_seed)), float(beta), float(rho))


@dataclass(frozen=True)
class TheoryRun:
    """What :func:`theory` produced.

    Attributes:
        out: the output folder (``None``: nothing written).
        summary: the ``summary.json`` (``points``, ``optimal_lambda``, ``all_converged``, ...).
        config: the ``config.json`` (the options and the expanded alphas).
    """

    out: Path | None
    summary: dict[str, Any]
    config: dict[str, Any]

    @property
    def all_converged(self) -> bool:
        """Whether every point's fixed point converged."""
        return bool(self.summary["all_converged"])


def theory_tsv(points: list[dict[str, Any]]) -> str:
    lines = ["\t".join(TSV_COLUMNS)]
    for p in points:
        sim = p.get("simulation") or {}
        mean, se = sim.get("mean", {}), sim.get("stderr", {})
        row = dict(p)
        for key in ("eps_g", "kl", "m", "q"):
            row[f"sim_{key}"] = mean.get(key)
            row[f"sim_{key}_se"] = se.get(key)
        cells = []
        for col in TSV_COLUMNS:
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



def theory(
    options: TheoryOptions,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> TheoryRun:
    """Solve the replica saddle point over the grid of ``options`` (and simulate it); with
    ``out``, write ``theory.tsv``, ``summary.json``, ``config.json`` and ``theory.png``."""
    from ..plotting import figure_to_png
    from ..plotting.theory import plot_theory_curves
    from ..storage import (
        atomic_output_dir,
        atomic_write_bytes,
        atomic_write_json,
        atomic_write_text,
        environment_info,
    )
    from ..theory import SolverOptions, learning_curves, simulate

    q = options.states
    alphas = options.alphas()
    lams = options.lambdas()
    student = options.student
    n_sim = options.simulate
    sim_student = options.simulation_student()
    scenario = make_scenario(options.ucol, q, options.beta, options.rho, options.ucol_seed)
    solver = SolverOptions(tol=options.tol, integration=options.integration, seed=options.seed)
    if out is not None:
        out = Path(out)
        if out.exists() and any(out.iterdir()) and not overwrite:
            raise FileExistsError(
                f"output folder {out} exists and is not empty; choose another --out or pass --overwrite"
            )
    t0 = time.perf_counter()
    curves = learning_curves(
        scenario, alphas, lams, student=student, options=solver,
        optimize_lambda=options.optimal_lambda, progress=progress,
    )  # fmt: skip
    t_theory = time.perf_counter() - t0
    points = [p.to_dict() for row in curves.points for p in row]
    if n_sim:
        sim_fit: Any = sim_student
        if sim_student == "attention":
            from functools import partial

            from .attention_student import fit_attention

            sim_fit = partial(fit_attention, device=options.device or "cpu")
        for lam in lams:
            sims = simulate(
                scenario, curves.alphas.tolist(), lam, n_sim, n_seeds=options.seeds,
                student=sim_fit, n_test=options.n_test, seed=options.seed,
            )  # fmt: skip
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
    config = {k: v for k, v in dataclasses.asdict(options).items() if k != "memory_limit_gb"}
    config["lam"], config["alpha"] = list(options.lam), list(options.alpha)
    config["alpha_values"] = list(curves.alphas)
    config["environment"] = environment_info()
    if out is not None:
        with atomic_output_dir(out, overwrite=overwrite) as tmp:
            atomic_write_text(tmp / "theory.tsv", theory_tsv(points))
            atomic_write_json(tmp / "summary.json", summary)
            atomic_write_json(tmp / "config.json", config)
            plot_points = points + [dict(p, optimal_lambda=True) for p in optimal]
            title = (
                f"q = {q}, Ucol = {options.ucol}, beta = {scenario.beta:g}, rho = "
                f"{scenario.rho:g}, {student} student"
            )
            fig = plot_theory_curves(plot_points, title=title)
            atomic_write_bytes(tmp / "theory.png", figure_to_png(fig))
    return TheoryRun(out, summary, config)
