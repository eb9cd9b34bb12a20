"""Finite-``N`` simulations of the replica scenario with convex students (numpy/scipy only).

Data: ``N`` i.i.d. uniform spins per sample, a teacher row ``w*_j ~ N(0, rho)``, teacher logits
``beta * z*`` with ``z*_a = sum_j w*_j Ucol[a, s_j] / sqrt(N)``, labels drawn from their softmax.
Students (minimise ``sum_mu CE + (lam / 2) |params|^2`` with L-BFGS, float64):

* ``"convex"`` - the factored student: one attention row ``a`` (``N`` numbers), value matrix fixed
  to ``Ucol`` (compare with :func:`attnpotts.theory.solve_factored`);
* ``"full"`` - a free per-site weight matrix ``W_j`` (``N q x q`` numbers; a plmDCA row; compare
  with :func:`attnpotts.theory.solve_full`).

The generalization error is measured on fresh test inputs with the teacher's exact conditional
probabilities (no label noise in the estimate): ``eps_g = mean_x sum_y P*(y|x) (-log P(y|x))``;
``eps_opt`` is the mean teacher entropy on the same inputs. Each seed draws its own teacher,
training set (nested over ``alpha``: a larger ``alpha`` extends the same sample) and test set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize

from ..errors import ConvergenceError, ValidationError
from ..random import SeedLike, as_generator, spawn_seeds
from ._channel import softmax
from .scenario import Scenario

__all__ = [
    "SIM_STUDENTS",
    "ScenarioData",
    "SimulationPoint",
    "StudentFit",
    "fit_convex",
    "fit_full",
    "generate_data",
    "simulate",
    "simulate_seed",
]

log = logging.getLogger(__name__)

SIM_STUDENTS: tuple[str, ...] = ("convex", "full")

#: Quantities measured per seed and averaged.
METRICS: tuple[str, ...] = (
    "eps_g",
    "eps_opt",
    "kl",
    "class_error",
    "class_error_opt",
    "m",
    "q",
    "coupling_error",
)


@dataclass
class SimulationPoint:
    """Mean and standard error over seeds at one ``(alpha, lambda)``.

    ``mean`` and ``stderr`` map each of :data:`METRICS` to a float (``m``, ``q`` and
    ``coupling_error`` are ``nan`` for the full student); ``per_seed`` keeps the raw values.
    """

    alpha: float
    lam: float
    n_sites: int
    n_samples: int
    student: str
    mean: dict[str, float]
    stderr: dict[str, float]
    per_seed: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record."""
        return {
            "alpha": self.alpha,
            "lambda": self.lam,
            "n_sites": self.n_sites,
            "n_samples": self.n_samples,
            "student": self.student,
            "mean": dict(self.mean),
            "stderr": dict(self.stderr),
            "n_seeds": len(self.per_seed),
        }


def _onehot_rows(spins: np.ndarray, q: int) -> sp.csr_matrix:
    """Sparse ``(M q, N)`` matrix with a one at ``(mu q + s_mu_j, j)``: ``h = X a`` gives
    ``h[mu, b] = sum_{j : s_mu_j = b} a_j``."""
    m, n = spins.shape
    rows = (np.arange(m)[:, None] * q + spins).ravel()
    cols = np.broadcast_to(np.arange(n), (m, n)).ravel()
    return sp.csr_matrix((np.ones(m * n), (rows, cols)), shape=(m * q, n))


def _onehot_sites(spins: np.ndarray, q: int) -> sp.csr_matrix:
    """Sparse ``(M, N q)`` one-hot design matrix (column ``j q + s_j``)."""
    m, n = spins.shape
    cols = (np.arange(n)[None, :] * q + spins).ravel()
    rows = np.repeat(np.arange(m), n)
    return sp.csr_matrix((np.ones(m * n), (rows, cols)), shape=(m, n * q))


def _ce_grad(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    zmax = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - zmax)
    s = e.sum(axis=1, keepdims=True)
    loss = float(np.sum(np.log(s[:, 0]) + zmax[:, 0] - logits[np.arange(len(y)), y]))
    g = e / s
    g[np.arange(len(y)), y] -= 1.0
    return loss, g


def _fit(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, gtol: float
) -> np.ndarray:
    res = minimize(
        fun,
        x0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 20000, "maxcor": 30, "gtol": gtol, "ftol": 1e-15},
    )
    _, g = fun(res.x)
    if np.abs(g).max() > 100 * gtol:
        raise ConvergenceError(
            f"L-BFGS did not converge ({res.message}; max gradient {np.abs(g).max():.3g})"
        )
    return np.asarray(res.x)


def _test_metrics(logits: np.ndarray, pstar: np.ndarray) -> dict[str, float]:
    zmax = logits.max(axis=1, keepdims=True)
    logp = logits - zmax - np.log(np.exp(logits - zmax).sum(axis=1, keepdims=True))
    eps_g = float(np.mean(-(pstar * logp).sum(axis=1)))
    ent = float(np.mean(-(pstar * np.log(np.clip(pstar, 1e-300, None))).sum(axis=1)))
    pred = logits.argmax(axis=1)
    cls = float(np.mean(1.0 - pstar[np.arange(len(pred)), pred]))
    return {
        "eps_g": eps_g,
        "eps_opt": ent,
        "kl": eps_g - ent,
        "class_error": cls,
        "class_error_opt": float(np.mean(1.0 - pstar.max(axis=1))),
    }


@dataclass(frozen=True)
class ScenarioData:
    """One teacher and its data (one seed of a simulation).

    Attributes:
        scenario: the teacher's scenario; wstar: ``(N,)`` teacher row (``|w*|^2 = rho N`` when
            spherical).
        spins: ``(M_max, N)`` training inputs; labels: ``(M_max,)`` colours of the masked site.
        spins_test: ``(n_test, N)`` test inputs; pstar_test: ``(n_test, q)`` teacher conditionals.
    """

    scenario: Scenario
    wstar: np.ndarray
    spins: np.ndarray
    labels: np.ndarray
    spins_test: np.ndarray
    pstar_test: np.ndarray

    @property
    def n_sites(self) -> int:
        """``N``, the number of non-masked sites."""
        return int(self.wstar.shape[0])


#: A student: ``fit(data, m, lam, state) -> result``. It trains on the first ``m`` samples of
#: ``data`` with L2 strength ``lam`` (on the sum of the per-sample losses) and returns a dict with
#: ``"test_logits"`` ``(n_test, q)`` and, for students with an attention row, ``"row"``, the row
#: in units of the teacher's ``w*`` (``a_j = sqrt(N) A[0, j]``). ``state`` is a dict the student may
#: use to warm-start the next (larger) ``m`` of the same seed.
StudentFit = Callable[[ScenarioData, int, float, dict[str, Any]], dict[str, np.ndarray]]


def generate_data(
    scenario: Scenario,
    n_sites: int,
    n_train: int,
    *,
    n_test: int = 20000,
    seed: SeedLike = 0,
    spherical_teacher: bool = True,
    teacher_mean: float | None = None,
) -> ScenarioData:
    """Draw a teacher, ``n_train`` labelled training inputs and ``n_test`` test inputs.

    ``teacher_mean`` fixes ``S* = sum_j w*_j / sqrt(N)`` (the quenched mean order parameter that
    matters when ``Ucol`` has unequal row sums; compare with ``solve_factored(...,
    teacher_mean=S*)``); ``None`` leaves it random, ``N(0, rho)``.

    ``spherical_teacher`` rescales ``w*`` to ``|w*|^2 = rho N`` exactly (its limit value), which
    removes the ``O(1 / sqrt(N))`` teacher-to-teacher spread of the optimal loss without changing
    the ``N -> inf`` theory; set it to ``False`` for i.i.d. ``N(0, rho)`` weights as they are.
    """
    if n_sites < 2 or n_test < 1 or n_train < 1:
        raise ValidationError(
            f"need n_sites >= 2, n_train >= 1 and n_test >= 1, got {n_sites}, {n_train}, {n_test}"
        )
    rng = as_generator(seed)
    q, u, n = scenario.q, scenario.ucol, n_sites
    wstar = rng.normal(0.0, np.sqrt(scenario.rho), size=n)
    unit = np.full(n, 1.0 / np.sqrt(n))
    s_star = float(wstar @ unit) if teacher_mean is None else float(teacher_mean)
    perp = wstar - (wstar @ unit) * unit
    if spherical_teacher:
        if s_star**2 >= scenario.rho * n:
            raise ValidationError(
                f"teacher_mean^2 = {s_star**2:g} must be below rho N = {scenario.rho * n:g}"
            )
        perp *= np.sqrt(scenario.rho * n - s_star**2) / np.linalg.norm(perp)
    wstar = perp + s_star * unit
    spins = rng.integers(0, q, size=(n_train, n))
    spins_test = rng.integers(0, q, size=(n_test, n))

    def teacher_logits(s: np.ndarray) -> np.ndarray:
        h = (_onehot_rows(s, q) @ wstar).reshape(len(s), q)  # (M, q)
        return scenario.beta * (h @ u.T) / np.sqrt(n)

    pstar_train = softmax(teacher_logits(spins))
    labels = (pstar_train.cumsum(axis=1) < rng.random((n_train, 1))).sum(axis=1)
    labels = np.minimum(labels, q - 1)
    return ScenarioData(
        scenario, wstar, spins, labels, spins_test, softmax(teacher_logits(spins_test))
    )


def fit_convex(
    data: ScenarioData, m: int, lam: float, state: dict[str, Any], gtol: float = 1e-8
) -> dict[str, np.ndarray]:
    """The factored student by L-BFGS: row ``a`` (``N``), value matrix fixed to ``Ucol``."""
    q, u, n = data.scenario.q, data.scenario.ucol, data.n_sites
    sq = np.sqrt(n)
    xr = _onehot_rows(data.spins[:m], q)
    y = data.labels[:m]

    def fun(a: np.ndarray) -> tuple[float, np.ndarray]:
        h = (xr @ a).reshape(m, q)
        loss, g = _ce_grad(h @ u.T / sq, y)
        grad = xr.T @ ((g @ u) / sq).ravel()
        return loss + 0.5 * lam * float(a @ a), grad + lam * a

    a = _fit(fun, state.get("convex", np.zeros(n)), gtol)
    state["convex"] = a
    h_test = (_onehot_rows(data.spins_test, q) @ a).reshape(-1, q)
    return {"test_logits": h_test @ u.T / sq, "row": a}


def fit_full(
    data: ScenarioData, m: int, lam: float, state: dict[str, Any], gtol: float = 1e-8
) -> dict[str, np.ndarray]:
    """The full per-site student by L-BFGS: ``W_j`` ``(q, q)`` per site (a plmDCA row)."""
    q, n = data.scenario.q, data.n_sites
    sq = np.sqrt(n)
    xs = _onehot_sites(data.spins[:m], q)
    y = data.labels[:m]

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        loss, g = _ce_grad(xs @ w.reshape(n * q, q) / sq, y)
        grad = (xs.T @ g / sq).ravel()
        return loss + 0.5 * lam * float(w @ w), grad + lam * w

    w = _fit(fun, state.get("full", np.zeros(n * q * q)), gtol)
    state["full"] = w
    return {"test_logits": _onehot_sites(data.spins_test, q) @ w.reshape(n * q, q) / sq}


_BUILTIN: dict[str, StudentFit] = {"convex": fit_convex, "full": fit_full}


def simulate_seed(
    scenario: Scenario,
    alphas: Sequence[float],
    lam: float,
    n_sites: int,
    *,
    student: str | StudentFit = "convex",
    n_test: int = 20000,
    seed: SeedLike = 0,
    spherical_teacher: bool = True,
    teacher_mean: float | None = None,
) -> list[dict[str, float]]:
    """One teacher, one nested training set: metrics at each alpha (sorted ascending).

    Args:
        student: ``"convex"`` (:func:`fit_convex`), ``"full"`` (:func:`fit_full`) or any
            :data:`StudentFit` callable (e.g. the factored-attention student of
            :mod:`attnpotts.workflows.attention_student`).
        spherical_teacher, teacher_mean: see :func:`generate_data`.

    Raises:
        ValidationError: bad sizes or an unknown student.
    """
    if isinstance(student, str):
        if student not in _BUILTIN:
            raise ValidationError(
                f"unknown simulation student {student!r}; choose one of "
                f"{', '.join(SIM_STUDENTS)} or pass a fit function (the factored-attention "
                "student is attnpotts.workflows.attention_student.fit_attention)"
            )
        fit = _BUILTIN[student]
    else:
        fit = student
    alphas_sorted = sorted(float(a) for a in alphas)
    sizes = [max(1, round(a * n_sites)) for a in alphas_sorted]
    data = generate_data(
        scenario,
        n_sites,
        sizes[-1],
        n_test=n_test,
        seed=seed,
        spherical_teacher=spherical_teacher,
        teacher_mean=teacher_mean,
    )
    state: dict[str, Any] = {}
    out: list[dict[str, float]] = []
    for m_size in sizes:
        res = fit(data, m_size, lam, state)
        met = _test_metrics(np.asarray(res["test_logits"], dtype=float), data.pstar_test)
        row = res.get("row")
        if row is not None:
            a = np.asarray(row, dtype=float)
            n = n_sites
            met.update(
                {
                    "m": float(a @ data.wstar / n),
                    "q": float(a @ a / n),
                    "coupling_error": float(np.sum((a - scenario.beta * data.wstar) ** 2) / n),
                }
            )
        else:
            met.update({"m": np.nan, "q": np.nan, "coupling_error": np.nan})
        out.append(met)
    return out


def simulate(
    scenario: Scenario,
    alphas: Sequence[float],
    lam: float,
    n_sites: int,
    *,
    n_seeds: int = 4,
    student: str | StudentFit = "convex",
    n_test: int = 20000,
    seed: SeedLike = 0,
    spherical_teacher: bool = True,
    teacher_mean: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[SimulationPoint]:
    """Average :func:`simulate_seed` over ``n_seeds`` independent teachers and data sets.

    Returns one :class:`SimulationPoint` per alpha (ascending), with standard errors
    ``std(ddof=1) / sqrt(n_seeds)`` (``nan`` for one seed).
    """
    if n_seeds < 1:
        raise ValidationError(f"n_seeds must be >= 1, got {n_seeds}")
    if not (np.isfinite(lam) and lam >= 0):
        raise ValidationError(f"lam must be a non-negative number, got {lam}")
    alphas_sorted = sorted(float(a) for a in alphas)
    if not alphas_sorted or alphas_sorted[0] <= 0:
        raise ValidationError(f"alphas must be positive and non-empty, got {list(alphas)}")
    runs = []
    for k, child in enumerate(spawn_seeds(seed, n_seeds)):
        runs.append(
            simulate_seed(
                scenario,
                alphas_sorted,
                lam,
                n_sites,
                student=student,
                n_test=n_test,
                seed=child,
                spherical_teacher=spherical_teacher,
                teacher_mean=teacher_mean,
            )
        )
        if progress is not None:
            progress(k + 1, n_seeds)
    points = []
    for j, alpha in enumerate(alphas_sorted):
        per_seed = [r[j] for r in runs]
        mean = {k: float(np.mean([p[k] for p in per_seed])) for k in METRICS}
        stderr = {
            k: float(np.std([p[k] for p in per_seed], ddof=1) / np.sqrt(n_seeds))
            if n_seeds > 1
            else float("nan")
            for k in METRICS
        }
        points.append(
            SimulationPoint(
                alpha=alpha,
                lam=float(lam),
                n_sites=n_sites,
                n_samples=max(1, round(alpha * n_sites)),
                student=student
                if isinstance(student, str)
                else getattr(student, "__name__", "custom"),
                mean=mean,
                stderr=stderr,
                per_seed=per_seed,
            )
        )
    return points
