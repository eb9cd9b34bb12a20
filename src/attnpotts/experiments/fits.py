"""Power-law fits of learning curves: ``excess(M) ~ C M^slope`` on log-log axes, with uncertainties.

A consistent estimator's excess loss over the optimum falls to zero as the number of training
sequences ``M`` grows, asymptotically like ``1/M`` (slope -1) for a regular parametric model; a
model that cannot represent the target levels off at a floor (slope -> 0). Pure numpy, no state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ShapeError

__all__ = ["PowerLawFit", "fit_power_law", "local_slope"]


@dataclass(frozen=True)
class PowerLawFit:
    """``log y = intercept + slope log x``.

    Attributes:
        slope: fitted exponent; slope_stderr: its standard error.
        intercept: natural-log intercept.
        n_points: points used (those with a positive mean and a finite, positive s.e.).
        chi2_dof: chi-squared per degree of freedom of the weighted fit (``None`` with 2 points).
    """

    slope: float
    slope_stderr: float
    intercept: float
    n_points: int
    chi2_dof: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        """Plain-data form (JSON)."""
        return asdict(self)


def _usable(x: Sequence[float], y: Sequence[float], stderr: Sequence[float]) -> tuple[np.ndarray, ...]:
    xa, ya, sa = (np.asarray(v, dtype=np.float64) for v in (x, y, stderr))
    if not (xa.ndim == ya.ndim == sa.ndim == 1 and xa.shape == ya.shape == sa.shape):
        raise ShapeError(f"x, y and stderr must be 1-D of equal length, got {xa.shape}, {ya.shape}, {sa.shape}")
    ok = (xa > 0) & (ya > 0) & np.isfinite(xa) & np.isfinite(ya) & np.isfinite(sa) & (sa > 0)
    return np.log(xa[ok]), np.log(ya[ok]), sa[ok] / ya[ok]


def fit_power_law(x: Sequence[float], y: Sequence[float], stderr: Sequence[float]) -> PowerLawFit | None:
    """Weighted least squares of ``log y`` on ``log x`` (``None`` with fewer than 2 usable points).

    Args:
        x: ``(n,)`` positive abscissae (numbers of training sequences).
        y: ``(n,)`` means (excess losses); points with ``y <= 0`` cannot be on a log axis and are
            left out.
        stderr: ``(n,)`` standard errors of ``y``; the error of ``log y`` is ``stderr / y`` (delta
            method). Points with a zero or non-finite s.e. are left out.

    The slope's standard error is the weighted fit's, multiplied by ``sqrt(chi2/dof)`` when that is
    above 1 (the points scatter more than their error bars say, e.g. a curve that is not a power law).
    """
    lx, ly, sl = _usable(x, y, stderr)
    n = lx.size
    if n < 2 or np.ptp(lx) == 0:
        return None
    w = 1.0 / sl**2
    X = np.stack([np.ones(n), lx], axis=1)  # (n, 2)
    cov = np.linalg.inv(X.T @ (w[:, None] * X))  # (2, 2)
    beta = cov @ (X.T @ (w * ly))
    resid = ly - X @ beta
    chi2_dof = float(np.sum(w * resid**2) / (n - 2)) if n > 2 else None
    scale = max(1.0, chi2_dof) if chi2_dof is not None else 1.0
    return PowerLawFit(
        slope=float(beta[1]),
        slope_stderr=float(math.sqrt(cov[1, 1] * scale)),
        intercept=float(beta[0]),
        n_points=int(n),
        chi2_dof=chi2_dof,
    )


def local_slope(x: Sequence[float], y: Sequence[float], stderr: Sequence[float]) -> PowerLawFit | None:
    """The slope between two points (e.g. the two largest ``M``): whether the curve still falls there.

    ``None`` when one of the two points has ``y <= 0`` or no usable s.e.
    """
    if len(x) != 2:
        raise ShapeError(f"local_slope takes exactly 2 points, got {len(x)}")
    lx, ly, sl = _usable(x, y, stderr)
    if lx.size != 2 or lx[0] == lx[1]:
        return None
    d = float(lx[1] - lx[0])
    slope = float(ly[1] - ly[0]) / d
    return PowerLawFit(
        slope=slope,
        slope_stderr=float(math.hypot(sl[0], sl[1]) / abs(d)),
        intercept=float(ly[0] - slope * lx[0]),
        n_points=2,
        chi2_dof=None,
    )
