"""Calibrate the temperature: find ``beta`` whose samples have a target mean Hamming distance.

Plain Gibbs chains from random starts freeze into different local minima at low temperature, and
their mean pairwise distance then *rises* again with beta (pilot findings, ``docs/experiments.md``):
a naive bisection drifts to nonsense. So every distance here is measured with parallel tempering
over a ladder that starts at ``beta = 0``, the curve ``d(beta)`` is checked to decrease
monotonically and the chains to agree (R-hat), the reachable range is reported, and an
unreachable target is refused with :class:`~attnpotts.errors.UnreachableTargetError`.

The distance of the ensemble is that between two independent equilibrium samples,
``d(beta) = 1 - (1 / L) sum_i sum_a P_i(a)^2``, estimated from the pooled single-site marginals of
all replica sets; its standard error is the jackknife over replica sets (independent chains).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UnreachableTargetError, ValidationError
from ..potts import PottsModel
from ..random import SeedLike, as_seed_sequence
from .diagnostics import split_rhat
from .samplers import ParallelTempering

__all__ = [
    "CalibrationResult",
    "DistanceCurve",
    "calibrate_beta",
    "default_ladder",
    "distance_curve",
    "ensemble_distance",
    "reliable_prefix",
]

log = logging.getLogger(__name__)

#: Number of standard errors by which d(beta) may rise before the curve counts as non-monotone.
_MONOTONE_Z = 3.0
#: R-hat of the energy above which the chains at a temperature count as not mixed.
_RHAT_MAX = 1.1


def ensemble_distance(samples: np.ndarray, n_states: int) -> tuple[float, float]:
    """Distance ``1 - mean_i sum_a p_ia^2`` and its jackknife standard error.

    Args:
        samples: ``(n, R, L)`` samples of ``R`` independent chains (``R >= 2`` for an error bar).
        n_states: ``q``.
    """
    n, R, L = samples.shape
    counts = np.zeros((R, L, n_states))
    for r in range(R):
        for i in range(L):
            counts[r, i] = np.bincount(samples[:, r, i].astype(np.intp), minlength=n_states)
    total = counts.sum(axis=0)

    def dist(c: np.ndarray, m: int) -> float:
        p = c / m
        return float(1.0 - (p**2).sum(axis=-1).mean())

    d = dist(total, n * R)
    if R < 2:
        return d, float("nan")
    loo = np.array([dist(total - counts[r], n * (R - 1)) for r in range(R)])
    se = float(np.sqrt((R - 1) / R * ((loo - loo.mean()) ** 2).sum()))
    return d, se


@dataclass(frozen=True)
class DistanceCurve:
    """Mean pairwise Hamming distance along a ladder, measured by parallel tempering.

    Attributes:
        betas: ``(T,)`` the ladder.
        distances, stderr: ``(T,)`` distance and its standard error at each beta.
        rhat: ``(T,)`` split-R-hat of the energy over replica sets at each beta.
        swap_rates: ``(T - 1,)`` swap acceptance between neighbours.
        valid: ``(T,)`` bool, temperatures up to the first sign of trouble (a rise of the distance
            beyond ``3`` standard errors, or R-hat above ``1.1``).
    """

    betas: np.ndarray
    distances: np.ndarray
    stderr: np.ndarray
    rhat: np.ndarray
    swap_rates: np.ndarray
    valid: np.ndarray

    @property
    def reachable(self) -> tuple[float, float]:
        """(lowest, highest) distance over the valid part of the ladder."""
        d = self.distances[self.valid]
        return float(d.min()), float(d.max())

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {
            "betas": self.betas.tolist(),
            "distances": self.distances.tolist(),
            "stderr": self.stderr.tolist(),
            "rhat": self.rhat.tolist(),
            "swap_rates": self.swap_rates.tolist(),
            "valid": self.valid.tolist(),
            "reachable": list(self.reachable),
        }


def distance_curve(
    model: PottsModel,
    betas: np.ndarray,
    *,
    n_replicas: int = 8,
    n_sweeps: int = 2000,
    burn_in: int = 500,
    seed: SeedLike = None,
) -> DistanceCurve:
    """Measure ``d(beta)`` on a ladder by one parallel-tempering run (see module docstring)."""
    if burn_in >= n_sweeps:
        raise ValidationError(f"burn_in ({burn_in}) must be smaller than n_sweeps ({n_sweeps})")
    pt = ParallelTempering(model, betas)
    run = pt.run(n_sweeps, pt.init_state(n_replicas, seed=seed), burn_in=burn_in)
    T = pt.ladder.size
    d = np.empty(T)
    se = np.empty(T)
    rhat = np.empty(T)
    for k in range(T):
        d[k], se[k] = ensemble_distance(run.samples[:, k], model.n_states)
        rhat[k] = split_rhat(run.energy_trace[burn_in:, k])
    valid = reliable_prefix(d, se, rhat)
    if not valid.all():
        k = int(np.argmin(valid))
        log.info("distance curve unreliable from beta=%.4g (R-hat %.3g)", pt.ladder[k], rhat[k])
    return DistanceCurve(pt.ladder, d, se, rhat, run.state.swap_rates(), valid)


def reliable_prefix(distances: np.ndarray, stderr: np.ndarray, rhat: np.ndarray) -> np.ndarray:
    """``(T,)`` bool: the temperatures before the first sign of trouble along an increasing ladder.

    Trouble at ``k`` is a rise ``d[k] - d[k-1]`` larger than 3 combined standard errors (the
    distance must decrease as beta grows) or an energy R-hat above 1.1 (replica sets disagree).
    """
    T = distances.size
    valid = np.ones(T, dtype=bool)
    for k in range(1, T):
        rise = distances[k] - distances[k - 1]
        if rise > _MONOTONE_Z * np.hypot(stderr[k], stderr[k - 1]) or not rhat[k] <= _RHAT_MAX:
            valid[k:] = False
            break
    return valid


@dataclass(frozen=True)
class CalibrationResult:
    """Outcome of :func:`calibrate_beta`.

    Attributes:
        beta: the calibrated inverse temperature.
        distance, stderr: distance measured at ``beta`` and its standard error.
        target: the requested distance.
        curve: the coarse curve over the ladder (reachable range, monotonicity, R-hat).
        history: ``(beta, distance, stderr)`` of each bisection step.
    """

    beta: float
    distance: float
    stderr: float
    target: float
    curve: DistanceCurve
    history: list[tuple[float, float, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {
            "beta": self.beta,
            "distance": self.distance,
            "stderr": self.stderr,
            "target": self.target,
            "curve": self.curve.to_dict(),
            "bisection": [list(h) for h in self.history],
        }


def default_ladder(beta_max: float, n_temperatures: int) -> np.ndarray:
    """``[0, geometric from beta_max / 40 to beta_max]`` with ``n_temperatures`` values in all."""
    return np.concatenate([[0.0], np.geomspace(beta_max / 40.0, beta_max, n_temperatures - 1)])


def calibrate_beta(
    model: PottsModel,
    target: float,
    *,
    beta_max: float = 5.0,
    n_temperatures: int = 20,
    n_replicas: int = 8,
    n_sweeps: int = 2000,
    burn_in: int = 500,
    tol: float = 0.005,
    max_iter: int = 10,
    seed: SeedLike = None,
    progress: Callable[[int, int], None] | None = None,
) -> CalibrationResult:
    """Bisect on ``beta`` until the ensemble's mean pairwise Hamming distance is ``target``.

    First one parallel-tempering run over ``default_ladder(beta_max, n_temperatures)`` measures
    the curve ``d(beta)``, checks that it decreases and that chains agree, and brackets the target.
    Then each bisection step measures ``d`` at the midpoint with a ladder ending there, until
    ``|d - target| <= max(tol, 2 stderr)`` or ``max_iter`` steps.

    Args:
        model: the model (its ``beta`` is ignored).
        target: mean normalised Hamming distance in ``(0, 1)``.
        beta_max: largest beta tried.
        n_temperatures, n_replicas, n_sweeps, burn_in: parallel-tempering settings of each run.
        tol: acceptable error of the distance.
        max_iter: largest number of bisection steps.
        seed: seed of all runs.
        progress: called with ``(step, max_iter + 1)`` after each run.

    Raises:
        UnreachableTargetError: ``target`` is outside the reachable range (the message gives it).
    """
    target = float(target)
    if not 0.0 < target < 1.0:
        raise UnreachableTargetError(
            f"target distance must lie in (0, 1) (a normalised Hamming distance), got {target}"
        )
    if not np.isfinite(beta_max) or beta_max <= 0:
        raise ValidationError(f"beta_max must be finite and > 0, got {beta_max}")
    if n_temperatures < 3:
        raise ValidationError(f"n_temperatures must be >= 3, got {n_temperatures}")
    if tol <= 0:
        raise ValidationError(f"tol must be > 0, got {tol}")
    seeds = as_seed_sequence(seed).spawn(max_iter + 1)
    ladder = default_ladder(beta_max, n_temperatures)
    curve = distance_curve(
        model, ladder, n_replicas=n_replicas, n_sweeps=n_sweeps, burn_in=burn_in, seed=seeds[0]
    )
    if progress is not None:
        progress(1, max_iter + 1)
    low, high = curve.reachable
    q = model.n_states
    if not low - tol <= target <= high + tol:
        hint = (
            f"the largest possible distance is 1 - 1/q = {1 - 1 / q:.3f} (beta = 0)"
            if target > high
            else "raise beta_max, or use an ensemble that orders more (denser couplings, "
            "colour='ferromagnetic', fields)"
        )
        raise UnreachableTargetError(
            f"target mean Hamming distance {target} is not reachable for this model with "
            f"beta <= {ladder[curve.valid][-1]:.3g}: measured range is [{low:.3f}, {high:.3f}]"
            f" (sampler checks: distance decreasing with beta and R-hat <= {_RHAT_MAX}); {hint}"
        )
    betas = curve.betas[curve.valid]
    dists = curve.distances[curve.valid]
    errs = curve.stderr[curve.valid]
    best = int(np.argmin(np.abs(dists - target)))
    result = (float(betas[best]), float(dists[best]), float(errs[best]))
    history: list[tuple[float, float, float]] = []
    # bracket: d(lo) >= target >= d(hi)
    above = np.nonzero(dists >= target)[0]
    k = int(above[-1]) if above.size else 0
    if abs(result[1] - target) > max(tol, 2 * result[2]) and k + 1 < betas.size:
        lo, hi = float(betas[k]), float(betas[k + 1])
        for step in range(max_iter):
            mid = 0.5 * (lo + hi)
            sub = np.append(ladder[ladder < mid], mid)
            if sub.size < 2:
                sub = np.array([0.0, mid])
            c = distance_curve(
                model, sub, n_replicas=n_replicas, n_sweeps=n_sweeps, burn_in=burn_in,
                seed=seeds[step + 1],
            )  # fmt: skip
            d, se = float(c.distances[-1]), float(c.stderr[-1])
            history.append((mid, d, se))
            if progress is not None:
                progress(step + 2, max_iter + 1)
            if abs(d - target) < abs(result[1] - target):
                result = (mid, d, se)
            if abs(d - target) <= max(tol, 2 * se):
                break
            if d > target:
                lo = mid
            else:
                hi = mid
    beta, d, se = result
    log.info("calibrated beta = %.4g: distance %.4f +- %.4f (target %.4f)", beta, d, se, target)
    return CalibrationResult(beta, d, se, target, curve, history)
