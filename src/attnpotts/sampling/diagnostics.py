"""MCMC diagnostics: autocorrelation, integrated autocorrelation time, ESS, split-R-hat.

Traces are ``(n, C)`` arrays: ``n`` successive values of ``C`` independent chains (a 1-d trace is
one chain). References: A. Sokal, "Monte Carlo methods in statistical mechanics" (1996), automatic
windowing with ``c = 5``; A. Gelman et al., Bayesian Data Analysis (3rd ed.), split-R-hat.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ShapeError, ValidationError

__all__ = [
    "autocorrelation",
    "effective_sample_size",
    "integrated_autocorr_time",
    "mean_pairwise_hamming",
    "split_rhat",
    "trace_summary",
]


def _as_trace(x: np.ndarray, *, min_length: int = 2) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ShapeError(
            f"a trace must be (n,) or (n, C) = (n_steps, n_chains), got shape {arr.shape}"
        )
    if arr.shape[0] < min_length:
        raise ValidationError(f"a trace needs at least {min_length} steps, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValidationError("the trace contains NaN or infinite values")
    return arr


def autocorrelation(x: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation ``rho(t)``, ``(n,)``, averaged over chains.

    Each chain is centred on its own mean; the autocovariances of the chains are averaged (FFT,
    biased estimator ``1/n``) and divided by the lag-0 value. A constant trace gives ``rho = 1`` at
    lag 0 and 0 elsewhere.
    """
    arr = _as_trace(x)
    n = arr.shape[0]
    centred = arr - arr.mean(axis=0)
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(centred, n=size, axis=0)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=0)[:n].mean(axis=1) / n
    if acov[0] <= 0:
        out = np.zeros(n)
        out[0] = 1.0
        return out
    return np.asarray(acov / acov[0])


def integrated_autocorr_time(x: np.ndarray, *, c: float = 5.0) -> float:
    """Integrated autocorrelation time ``tau = 1 + 2 sum_{t=1}^{W} rho(t)`` (Sokal windowing).

    The window ``W`` is the smallest lag with ``W >= c * tau(W)``. ``tau`` is in units of the
    trace's steps; ``tau = 1`` for independent values. If no window satisfies the condition the
    trace is too short for a reliable estimate and the value at the largest lag is returned
    (check ``n >= 50 tau``).
    """
    if c <= 0:
        raise ValidationError(f"the window constant c must be > 0, got {c}")
    rho = autocorrelation(x)
    taus = 2.0 * np.cumsum(rho) - 1.0  # taus[W] = 1 + 2 sum_{t=1}^{W} rho(t)
    ok = np.arange(rho.size) >= c * taus
    W = int(np.argmax(ok)) if ok.any() else rho.size - 1
    return float(max(taus[W], 1.0 / rho.size))


def effective_sample_size(x: np.ndarray, *, c: float = 5.0) -> float:
    """Effective number of independent samples ``n C / tau`` of an ``(n, C)`` trace."""
    arr = _as_trace(x)
    return float(arr.size / integrated_autocorr_time(arr, c=c))


def split_rhat(x: np.ndarray) -> float:
    """Split-R-hat of an ``(n, C)`` trace (each chain split in two halves; ``n >= 4``).

    Values close to 1 (below about 1.01-1.1) mean the chains agree; larger values mean they have
    not mixed (different modes, or not yet equilibrated). NaN if every half is constant.
    """
    arr = _as_trace(x, min_length=4)
    half = arr.shape[0] // 2
    halves = np.concatenate([arr[:half], arr[arr.shape[0] - half :]], axis=1)  # (half, 2C)
    n = halves.shape[0]
    means = halves.mean(axis=0)
    within = halves.var(axis=0, ddof=1).mean()
    between = n * means.var(ddof=1)
    if within == 0:
        return float("nan") if between == 0 else float("inf")
    var_plus = (n - 1) / n * within + between / n
    return float(np.sqrt(var_plus / within))


def trace_summary(x: np.ndarray) -> dict[str, Any]:
    """Mean, standard deviation, ``tau``, ESS, standard error and split-R-hat of a trace."""
    arr = _as_trace(x, min_length=4)
    tau = integrated_autocorr_time(arr)
    ess = arr.size / tau
    return {
        "n_steps": int(arr.shape[0]),
        "n_chains": int(arr.shape[1]),
        "mean": float(arr.mean()),
        "std": float(arr.std()),
        "tau": tau,
        "ess": float(ess),
        "stderr": float(arr.std() / np.sqrt(ess)),
        "split_rhat": split_rhat(arr),
    }


def mean_pairwise_hamming(states: np.ndarray, n_states: int | None = None) -> float:
    """Mean normalised Hamming distance over all pairs of distinct sequences ``(M, L)``.

    Exact over the ``M (M - 1) / 2`` pairs, computed from per-site colour counts in ``O(M L)``:
    ``1 - (1 / L) sum_i sum_a n_ia (n_ia - 1) / (M (M - 1))``.
    """
    s = np.asarray(states)
    if s.ndim != 2:
        raise ShapeError(f"states must be (M, L), got shape {s.shape}")
    M, L = s.shape
    if M < 2 or L < 1:
        raise ValidationError(f"need at least 2 sequences of length >= 1, got shape {s.shape}")
    q = int(s.max()) + 1 if n_states is None else int(n_states)
    counts = np.zeros((L, q), dtype=np.float64)
    for i in range(L):
        counts[i] = np.bincount(s[:, i].astype(np.intp), minlength=q)[:q]
    same = (counts * (counts - 1)).sum() / (M * (M - 1) * L)
    return float(1.0 - same)
