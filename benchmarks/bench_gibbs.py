"""Gibbs sweep throughput (site updates per second) of the numba kernels vs a plain NumPy loop.

For L = 20, 64, 256 and q = 20 (random symmetric couplings), measures in the same run:

* ``numpy``: a straightforward single-chain heat-bath sweep in NumPy, one site at a time
  (gather the ``L`` rows ``Jt[i, j, s_j, :]``, sum, softmax, inverse CDF);
* the library's :class:`~attnpotts.sampling.MCMCSampler` (sequential heat-bath sweeps, uniforms
  drawn by NumPy included) with 1 and 1000 chains, float64 and float32 couplings, and both kernel
  loop orders (``chain``: each thread runs whole chains; ``site``: all chains update one site
  together).

Speeds are reported as site updates per second and as the ratio to the NumPy reference. The
roofline columns estimate the bound of the kernel (see ``_bound``) and the fraction reached.
The machine is shared: the load average at the start and end is recorded, and the ratios should
be read from several runs (the NumPy reference and the 2-thread kernel are slowed differently).

Usage: ``python benchmarks/bench_gibbs.py [--quick] [--out benchmarks/results/bench_gibbs.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np

from attnpotts.potts import PottsModel
from attnpotts.sampling import MCMCSampler
from attnpotts.sampling.kernels import padded_colours
from attnpotts.storage import atomic_write_json, environment_info

Q = 20
#: Minimum wall time of one measurement (seconds); repeated measurements take the best.
MIN_TIME = 0.5


def random_model(L: int, q: int, seed: int = 0) -> PottsModel:
    rng = np.random.default_rng(seed)
    J = rng.normal(size=(L, L, q, q)) / np.sqrt(L)
    J = 0.5 * (J + J.transpose(1, 0, 3, 2))
    J[np.arange(L), np.arange(L)] = 0.0
    return PottsModel(None, J, beta=1.0)


def numpy_sweep(s: np.ndarray, Jt: np.ndarray, h: np.ndarray, beta: float, u: np.ndarray) -> None:
    """One sequential heat-bath sweep of one chain ``s`` (L,) in place (the reference)."""
    L = s.shape[0]
    sites = np.arange(L)
    for i in range(L):
        field = h[i] + Jt[i, sites, s].sum(axis=0)  # Jt[i, j, s_j, :] summed over j: (q,)
        logits = beta * field
        w = np.exp(logits - logits.max())
        c = np.cumsum(w)
        s[i] = min(int(np.searchsorted(c, u[i] * c[-1], side="right")), w.size - 1)


def time_numpy(model: PottsModel, seed: int = 0) -> tuple[float, int]:
    Jt = np.ascontiguousarray(model.couplings.transpose(0, 1, 3, 2))
    h = np.array(model.fields)
    rng = np.random.default_rng(seed)
    L = model.n_sites
    s = rng.integers(0, Q, size=L)
    numpy_sweep(s, Jt, h, model.beta, rng.random(L))  # warm-up
    n, t = 0, 0.0
    start = time.perf_counter()
    while t < MIN_TIME:
        numpy_sweep(s, Jt, h, model.beta, rng.random(L))
        n += 1
        t = time.perf_counter() - start
    return n * L / t, n


def time_kernel(model: PottsModel, chains: int, dtype: str, loop: str) -> tuple[float, int]:
    sampler = MCMCSampler(model, dtype=dtype, loop=loop)  # type: ignore[arg-type]
    state = sampler.init_state(chains, seed=0)
    state = sampler.run(2, state).state  # compile / warm-up
    L = model.n_sites
    # grow the number of sweeps until one measurement takes MIN_TIME, then keep the best of 3
    n = 2
    while True:
        start = time.perf_counter()
        state = sampler.run(n, state, thin=n + 1).state
        dt = time.perf_counter() - start
        if dt >= MIN_TIME:
            break
        n = max(2 * n, int(n * 1.2 * MIN_TIME / max(dt, 1e-6)))
    best = chains * L * n / dt
    for _ in range(2):
        start = time.perf_counter()
        state = sampler.run(n, state, thin=n + 1).state
        best = max(best, chains * L * n / (time.perf_counter() - start))
    return best, n


def _bound(L: int, chains: int, dtype: str, loop: str, cores: int, ghz: float) -> dict[str, Any]:
    """Roofline estimate of one site update of the kernel (AMD Zen 4 core, AVX-512 on 256-bit units).

    The kernel reads the ``L - 1`` rows ``Jt[i, j, s_j, :q_pad]`` (``q_pad = 24``: 96 B in float32,
    192 B in float64), adds them four at a time into the field (one vector add per 8 float32 /
    4 float64 lanes per row, amortised), then draws the colour: ``q`` exps by a vectorised
    polynomial and three short serial loops (max, sum, inverse CDF).

    * compute: a core retires 2 x 256-bit adds and 2 x 256-bit loads per cycle, so a row costs
      ``q_pad * item / 64`` cycles (1.5 float32, 3 float64); the draw ~``4 q + 40`` cycles
      (serial max/sum/search chains, ~25 vector ops per 4 or 8 colours of exp).
    * memory: rows come from L1 (64 B/cycle) when ``Jt[i]`` (``L q q_pad`` values) fits 32 KiB,
      from L2 (32 B/cycle) when it fits 1 MiB and the chains of a block share it (site loop, or
      ``Jt`` itself fits L2), from L3 (16 B/cycle) when ``Jt`` fits the 32 MiB L3, else from DRAM
      (assumed 10 GB/s per core of this shared VM, not measured). Rows are random, so each costs
      whole 64 B lines (2 for the 96 B float32 rows, which start on 32 B boundaries; 3 for 192 B).

    The bound is ``min(cores, chains) * ghz / max(compute, memory cycles)`` updates per second.
    """
    item = 4 if dtype == "float32" else 8
    qp = padded_colours(Q)
    row_bytes = qp * item
    line_bytes = 64 * -(-row_bytes // 64)
    rows = L - 1
    draw = 4 * Q + 40
    compute = rows * row_bytes / 64 + draw
    site_bytes = L * Q * qp * item
    jt_bytes = L * site_bytes
    # the rows of site i are reused from cache by the other chains of a block (site loop);
    # otherwise (one chain, or chain loop) only if the whole of Jt stays in cache between sweeps
    shared = loop == "site" and chains > 1
    if site_bytes <= 32 * 2**10 and shared:
        bw = 64.0
    elif (site_bytes <= 2**20 and shared) or jt_bytes <= 2**20:
        bw = 32.0
    elif jt_bytes <= 32 * 2**20:
        bw = 16.0
    else:
        bw = 10e9 / (ghz * 1e9)
    memory = rows * line_bytes / bw + draw
    cycles = max(compute, memory)
    rate = min(cores, chains) * ghz * 1e9  # one chain keeps one core busy
    return {
        "compute_bound_updates_per_s": rate / compute,
        "memory_bound_updates_per_s": rate / memory,
        "bound_updates_per_s": rate / cycles,
        "bound_source": "compute" if compute >= memory else f"memory ({bw:.3g} B/cycle)",
        "jt_megabytes": jt_bytes / 2**20,
        "q_pad": qp,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="L = 20 and 64 only")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_gibbs.json"))
    parser.add_argument("--ghz", type=float, default=2.6, help="core clock for the bound estimate")
    args = parser.parse_args()
    cores = numba.get_num_threads()
    sizes = (20, 64) if args.quick else (20, 64, 256)
    rows: list[dict[str, Any]] = []
    header = (
        f"{'L':>4} {'chains':>6} {'dtype':>7} {'loop':>5} {'updates/s':>11} {'x numpy':>8} "
        f"{'bound/s':>10} {'% bound':>7}  bound by"
    )
    load = os.getloadavg()
    print(
        f"Gibbs sweep throughput, q = {Q}, {cores} threads, {platform.processor() or 'cpu'}, "
        f"load average {load[0]:.1f} (other processes share the cores: ratios move with it)"
    )
    print(header)
    print("-" * len(header))
    for L in sizes:
        model = random_model(L, Q)
        ref, _ = time_numpy(model)
        print(f"{L:>4} {1:>6} {'float64':>7} {'numpy':>5} {ref:>11.3g} {1.0:>8.1f}")
        rows.append(
            {"L": L, "chains": 1, "dtype": "float64", "impl": "numpy", "updates_per_s": ref}
        )
        for chains in (1, 1000):
            for dtype in ("float64", "float32"):
                for loop in ("chain", "site") if chains > 1 else ("chain",):
                    speed, n = time_kernel(model, chains, dtype, loop)
                    b = _bound(L, chains, dtype, loop, cores, args.ghz)
                    frac = speed / b["bound_updates_per_s"]
                    print(
                        f"{L:>4} {chains:>6} {dtype:>7} {loop:>5} {speed:>11.3g} "
                        f"{speed / ref:>8.1f} {b['bound_updates_per_s']:>10.3g} {100 * frac:>6.0f}%  "
                        f"{b['bound_source']}"
                    )
                    rows.append(
                        {
                            "L": L, "chains": chains, "dtype": dtype, "impl": f"numba-{loop}",
                            "updates_per_s": speed, "speedup_vs_numpy": speed / ref, "sweeps": n,
                            **b, "fraction_of_bound": frac,
                        }
                    )  # fmt: skip
    result = {
        "benchmark": "gibbs_sweep_throughput",
        "q": Q,
        "threads": cores,
        "cpu_count": os.cpu_count(),
        "assumed_ghz": args.ghz,
        "load_average_start": load,
        "load_average_end": os.getloadavg(),
        "rows": rows,
        "environment": environment_info(),
    }
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")
    best = {
        L: max(float(r["speedup_vs_numpy"]) for r in rows if r["chains"] == 1000 and r["L"] == L)
        for L in sizes
    }
    print(json.dumps({"best_speedup_1000_chains": best}))


if __name__ == "__main__":
    main()
