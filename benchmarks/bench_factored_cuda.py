"""Factored attention on a CUDA device: time per evaluation by block size, and memory against the estimate.

Why: on a GPU the factored pass is one-hot matrix products, one set per block of sites of
``J`` (:mod:`attnpotts.models.factored_kernels`). Blocks sized for a CPU cache
(:data:`~attnpotts.models.factored_kernels.BLOCK_BYTES`) mean many small products per
evaluation; :data:`~attnpotts.models.factored_kernels.DEVICE_BLOCK_BYTES` is the block the
device pass uses instead. This script measures that choice and checks the device part of the
memory estimate that a fit on CUDA is refused by (:func:`attnpotts.dca.check_memory`).

* ``time`` rows: one objective-and-gradient evaluation (pseudo-likelihood and coupling L2) of
  factored attention (``H`` heads, softmax) with each block budget of ``--block-mib``, and of
  the full Potts model (its dense kernel), on a synthetic alignment (uniform random states,
  ``q = 21``) at each ``L``; interleaved, medians of wall time after a warm-up, the device
  synchronised; ratio factored / full per budget.
* ``memory`` rows: a :class:`attnpotts.dca.FactoredDCA` fit on the device (``--max-iter``
  iterations) at each ``L``: ``torch.cuda.max_memory_allocated`` against the estimate's parts
  that live on the device (all but the interpreter and the mean-field start).

Usage (on a machine with CUDA):
    python benchmarks/bench_factored_cuda.py                          # L = 100, 200, 400, 1000
    python benchmarks/bench_factored_cuda.py --time 200 --block-mib 6 64 256 --memory

Writes ``benchmarks/results/bench_factored_cuda.json`` atomically (``--out NAME`` for another
file there; a file there that this benchmark did not write is refused, not replaced).
Exits with code 2 and a message when no CUDA device is present.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(RESULTS.parent))
from bench_dca import _check_out  # noqa: E402

Q = 21


def _tokens(L: int, N: int, device: str) -> Any:
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    states = rng.integers(0, Q, size=(N, L))
    states = states[np.lexsort(states.T[::-1])]  # sorted like prepare_data
    return torch.as_tensor(states.astype(np.int64), device=device)


def measure_time(L: int, N: int, H: int, budgets_mib: list[float], repeats: int,
                 device: str) -> dict[str, Any]:
    """Interleaved evaluations: factored attention at each block budget, and the full model."""
    import numpy as np
    import torch

    import attnpotts  # noqa: F401
    from attnpotts.inference.objectives import all_positions_cross_entropy, coupling_penalty
    from attnpotts.models import FactoredAttention, FullPotts, factored_kernels

    tokens = _tokens(L, N, device)
    w = torch.ones(N, device=device)
    factored = FactoredAttention(L, Q, H, variant="softmax", key_dim=16, init_std=1.0, seed=0).to(device)
    full = FullPotts(L, Q, symmetric=True, fields=True, init_std=0.01, seed=0).to(device)
    default = factored_kernels.DEVICE_BLOCK_BYTES
    runs: dict[str, list[float]] = {"full": [], **{f"factored_{b:g}": [] for b in budgets_mib}}

    def evaluate(m: Any) -> float:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        m.zero_grad(set_to_none=True)
        loss = all_positions_cross_entropy(m, tokens, w) / (N * L) + 0.005 * coupling_penalty(m)
        loss.backward()
        torch.cuda.synchronize()
        return time.perf_counter() - t0

    try:
        for rep in range(repeats + 1):  # the first round warms up (kernels, allocator)
            for b in budgets_mib:
                factored_kernels.DEVICE_BLOCK_BYTES = int(b * 1024**2)
                t = evaluate(factored)
                if rep:
                    runs[f"factored_{b:g}"].append(t)
            t = evaluate(full)
            if rep:
                runs["full"].append(t)
    finally:
        factored_kernels.DEVICE_BLOCK_BYTES = default
    med = {k: float(np.median(v)) for k, v in runs.items()}
    sites = {f"{b:g}": factored_kernels.block_sites(L, Q, 4, int(b * 1024**2)) for b in budgets_mib}
    return {
        "L": L, "N": N, "H": H, "repeats": repeats, "block_sites": sites,
        "full_wall_s": med["full"],
        "factored_wall_s": {f"{b:g}": med[f"factored_{b:g}"] for b in budgets_mib},
        "ratio_to_full": {f"{b:g}": med[f"factored_{b:g}"] / med["full"] for b in budgets_mib},
        "default_block_mib": default / 1024**2,
    }


def measure_memory(L: int, N: int, H: int, max_iter: int, device: str) -> dict[str, Any]:
    """A factored fit on the device: its peak allocated device memory against the estimate."""
    import numpy as np
    import torch

    from attnpotts.dca import FactoredDCA, prepare_data

    rng = np.random.default_rng(0)
    data = prepare_data(rng.integers(0, Q, size=(N, L)).astype(np.int8), np.ones(N), n_states=Q)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    est = FactoredDCA(n_heads=H, max_iter=max_iter, tolerance=None, device=device)
    t0 = time.perf_counter()
    est.fit(data)
    wall = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) - base
    parts = est.memory_estimate_.parts
    on_device = est.memory_estimate_.device_bytes
    return {
        "L": L, "N": N, "H": H, "max_iter": max_iter, "device_peak_bytes": int(peak),
        "device_estimate_bytes": int(on_device), "estimate_parts": parts,
        "ratio_estimate_to_peak": on_device / max(1, peak), "fit_wall_seconds": wall,
        "start": est.start_,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time", type=int, nargs="*", default=[100, 200, 400, 1000],
                    help="L values of the time rows")
    ap.add_argument("--block-mib", type=float, nargs="+", default=[6, 64, 256, 1024],
                    help="block budgets (MiB of J per block) to time")
    ap.add_argument("--memory", type=int, nargs="*", default=[200, 1000], help="L values of the memory rows")
    ap.add_argument("-n", "--n-sequences", type=int, default=10_000)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--max-iter", type=int, default=3, help="iterations of each memory row's fit")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default="bench_factored_cuda.json",
                    help="file name in benchmarks/results/ (never a file this benchmark did not write)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    out = None if args.no_write else _check_out(ap, args.out, "time", ("device", "torch"),
                                                 folder=RESULTS)
    import torch

    if not torch.cuda.is_available():
        print("bench_factored_cuda: no CUDA device here; run it on a machine with a GPU", file=sys.stderr)
        return 2
    N = args.n_sequences
    rows_time = []
    head = " ".join(f"{f'{b:g} MiB':>10}" for b in args.block_mib)
    if args.time:
        print(f"{'L':>5} {'N':>6} {'full s':>8} factored s / full: {head}")
    for L in args.time:
        r = measure_time(L, N, args.heads, args.block_mib, args.repeats, args.device)
        rows_time.append(r)
        ratios = " ".join(f"{r['ratio_to_full'][f'{b:g}']:10.2f}" for b in args.block_mib)
        print(f"{L:5d} {N:6d} {r['full_wall_s']:8.4f} {'':19}{ratios}", flush=True)
    rows_mem = []
    if args.memory:
        print(f"\n{'L':>5} {'N':>6} {'H':>3} {'peak GiB':>9} {'estimate':>9} {'est/peak':>8} {'fit s':>7}")
    for L in args.memory:
        r = measure_memory(L, N, args.heads, args.max_iter, args.device)
        rows_mem.append(r)
        print(f"{L:5d} {N:6d} {args.heads:3d} {r['device_peak_bytes'] / 1024**3:9.3f} "
              f"{r['device_estimate_bytes'] / 1024**3:9.3f} {r['ratio_estimate_to_peak']:8.2f} "
              f"{r['fit_wall_seconds']:7.1f}", flush=True)
    if out is not None:
        from attnpotts.storage import atomic_write_json, environment_info

        atomic_write_json(out, {
            "description": __doc__, "environment": environment_info(), "argv": sys.argv[1:],
            "cpu_count": os.cpu_count(), "device": torch.cuda.get_device_name(0),
            "torch": torch.__version__, "time": rows_time, "memory": rows_mem,
        })
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
