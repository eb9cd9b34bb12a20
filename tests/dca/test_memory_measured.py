"""Measured peak memory of DCA fits (both models) against :func:`attnpotts.dca.estimate_memory`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from attnpotts.dca import estimate_memory

#: A child process (factored attention from the start given, or the full model for ``"plm"``)
#: fits once on a small, narrow alignment (JIT-compiles the kernels and starts the
#: thread pools: a one-off spike on a cold numba cache that is not the fit's memory; narrow, so
#: that the allocator keeps no buffers of the measured fit's sizes from it, which would hide
#: part of that fit's memory), then resets the kernel's high-water mark of its resident memory
#: (``/proc/self/clear_refs``) and reads it (``VmHWM``) after the measured fit: exact, where
#: sampling every 2 ms missed short peaks while a kernel held the interpreter (about 10 % of
#: the peak once; sampling stays as a floor where the reset is not allowed). ``peak`` is what the fit
#: adds to the warmed-up process plus the estimate's runtime constant: the resident size of the
#: libraries themselves depends on the file system and page cache they are mapped from (100 MB
#: apart between two identical environments here), the fit's own allocations do not.
_MEMORY_CHILD = textwrap.dedent(
    """
    import json, os, sys, threading, time
    import numpy as np
    import attnpotts
    from attnpotts.dca import FactoredDCA, PlmDCA, prepare_data
    L, N, H = (int(x) for x in sys.argv[1:4])
    start = sys.argv[4]
    limit = {} if sys.argv[5] == "default" else {"memory_limit_gb": float(sys.argv[5])}
    max_iter = int(sys.argv[6])
    def estimator(**kw):
        if start == "plm":  # the full model (its own defaults; H unused)
            return PlmDCA(max_iter=kw.pop("max_iter"), **kw)
        return FactoredDCA(n_heads=H, start=start, **kw)
    page = os.sysconf("SC_PAGE_SIZE")
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page
    rng = np.random.default_rng(0)
    warm = rng.integers(0, 21, size=(64, min(L, 24))).astype(np.int8)  # the same kernels
    estimator(max_iter=1).fit(prepare_data(warm, np.ones(64), n_states=21))
    states = rng.integers(0, 21, size=(N, L)).astype(np.int8)
    def high_water():
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmHWM:"))
    base = rss()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the high-water mark starts again from the resident size now
        exact = True
    except OSError:
        exact = False
    peak, done = [base], threading.Event()
    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)
    watcher = threading.Thread(target=watch)
    watcher.start()
    data = prepare_data(states, np.ones(N), n_states=21)
    est = estimator(max_iter=max_iter, **limit).fit(data)
    done.set()
    watcher.join()
    peak[0] = max(peak[0], rss(), high_water() if exact else 0)
    from attnpotts.dca.memory import RUNTIME_BYTES
    print(json.dumps({"peak": peak[0] - base + RUNTIME_BYTES, "estimate": est.memory_estimate_.total_bytes}))
    """
)


def _measure(L: int, N: int, H: int, start: str = "random", limit_gb: str = "default",
             max_iter: int = 1) -> dict[str, int]:
    proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(L), str(N), str(H), start, limit_gb,
                           str(max_iter)], capture_output=True, text=True, check=True)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("start", ["random", "mean-field"])
def test_measured_peak_memory_of_a_factored_fit_is_within_20_percent_of_the_estimate(start: str) -> None:
    """At L = 150 the mean-field start's covariance matrix (72 MB) is the largest phase."""
    r = _measure(150, 1000, 16, start)
    assert 0.8 <= r["estimate"] / r["peak"] <= 1.2, r


@pytest.mark.parametrize(("L", "N"), [(150, 1000), (60, 20_000)])
def test_measured_peak_memory_of_a_plm_fit_is_near_the_estimate(L: int, N: int) -> None:
    """The full model's estimate (the same runtime constant, its full-size coupling buffers):
    measured 1.03 and 1.30 of the peak at these sizes with 2 threads (1.01 and 1.30 sampled every
    2 ms; 1.05 and 1.27 with 16 threads, sampled). It may overshoot (it counts the logits
    of the whole batch, which the fused pass does not form), never by more than 35 %, and never
    falls short by more than 10 %."""
    r = _measure(L, N, 1, "plm")
    assert 0.9 <= r["estimate"] / r["peak"] <= 1.35, r


@pytest.mark.slow
def test_a_factored_fit_of_default_length_stays_near_its_estimate() -> None:
    """60 L-BFGS iterations, so the history fills to the default 60 pairs (L = 280, N = 2,000,
    H = 32, the mean-field start): with the L-BFGS vectors in one block and the memory that
    glibc keeps released between the phases (:mod:`attnpotts.training.allocator`) the peak was
    0.68 GiB against an estimate of 0.75 GiB (1.10); with one allocation per vector and the
    memory kept across phases 0.91 GiB (0.82). The estimate must not fall short by more than
    10 % nor overshoot by more than 20 %."""
    r = _measure(280, 2000, 32, "mean-field", max_iter=60)
    assert 0.9 <= r["estimate"] / r["peak"] <= 1.2, r


@pytest.mark.slow
@pytest.mark.timeout(1800)  # one L-BFGS iteration at L = 1000 takes 7-9 minutes on 2 cores
def test_factored_fit_at_l_1000_stays_under_4_gib_and_near_its_estimate() -> None:
    """L = 1000, N = 10,000, H = 32 (synthetic), default memory limit: under 4 GiB measured,
    estimate within 20 %; the full model's estimate is more than 8x that peak."""
    r = _measure(1000, 10_000, 32)
    assert r["peak"] < 4 * 1024**3, r
    assert 0.8 <= r["estimate"] / r["peak"] <= 1.2, r
    assert estimate_memory(10_000, 1000, 21, model="plm").total_bytes > 8 * r["peak"]
