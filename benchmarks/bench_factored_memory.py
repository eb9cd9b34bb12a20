"""Factored attention DCA: measured peak memory against the estimate, and time per evaluation.

Why: factored attention stores ``H (2 L d + q^2)`` parameters instead of the full model's
``L^2 q^2 / 2``; its fit computes the pseudo-likelihood one block of ``J`` at a time
(:mod:`attnpotts.models.factored_kernels`), so its memory should stay far below the full
model's and its estimate (:func:`attnpotts.dca.estimate_memory`) should match what a fit uses.

* ``memory`` rows: a :class:`attnpotts.dca.FactoredDCA` fit (``max_iter`` L-BFGS iterations,
  final loss and scores included) on a synthetic alignment (uniform random states, ``q = 21``,
  unit weights) in a fresh child process; its peak resident memory (``VmHWM``) next to the
  estimate (and the full model's estimate for the same sizes).
* ``time`` rows: one objective-and-gradient evaluation (pseudo-likelihood, coupling L2) of
  factored attention (softmax, ``H`` heads) and of the full Potts model at the same ``L`` and
  ``N``, interleaved, medians of process CPU time and wall time; the ratio factored / full.

Usage:
    python benchmarks/bench_factored_memory.py                 # memory at L = 200, 500, 1000; time at L = 100, 200
    python benchmarks/bench_factored_memory.py --quick         # small sizes only
    python benchmarks/bench_factored_memory.py --memory 1000   # one memory row
    python benchmarks/bench_factored_memory.py --memory 1000 --time --symmetric   # symmetric, no time rows

Writes ``benchmarks/results/factored_memory.json`` atomically (rows of earlier runs with other
sizes or the other form are kept; each row records the arguments of the run that measured it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "results" / "factored_memory.json"
Q = 21


def _child_memory(L: int, N: int, H: int, max_iter: int, limit_gb: float,
                  symmetric: bool = False) -> dict[str, Any]:
    """Run in the child: one fit, its peak RSS and the estimate."""
    import numpy as np

    import attnpotts  # noqa: F401  (sets the OpenMP wait policy before torch and numba)
    from attnpotts.dca import FactoredDCA, estimate_memory, prepare_data

    rng = np.random.default_rng(0)
    states = rng.integers(0, Q, size=(N, L)).astype(np.int8)
    data = prepare_data(states, np.ones(N), n_states=Q)
    del states
    est = FactoredDCA(n_heads=H, max_iter=max_iter, memory_limit_gb=limit_gb, symmetric=symmetric)
    t0 = time.perf_counter()
    est.fit(data)
    wall = time.perf_counter() - t0
    from bench_dca import own_peak_rss_bytes

    peak = own_peak_rss_bytes()  # not ru_maxrss: that is floored by the parent's high-water mark
    plm = estimate_memory(N, L, Q, model="plm")
    return {
        "L": L, "N": N, "H": H, "symmetric": symmetric, "max_iter": max_iter, "memory_limit_gb": limit_gb,
        "peak_bytes": peak, "estimate_bytes": est.memory_estimate_.total_bytes,
        "estimate_parts": est.memory_estimate_.parts, "chunk": est.memory_estimate_.chunk,
        "ratio_estimate_to_peak": est.memory_estimate_.total_bytes / peak,
        "plm_estimate_bytes": plm.total_bytes, "fit_wall_seconds": wall,
        "evaluations": est.convergence_.evaluations, "start": est.start_,
        "start_seconds": est.start_seconds_,
    }


def measure_memory(L: int, N: int, H: int, max_iter: int, limit_gb: float,
                   symmetric: bool = False) -> dict[str, Any]:
    """Fit in a fresh child process (its own peak RSS) and return its row."""
    here = str(Path(__file__).resolve().parent)
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); import bench_factored_memory as b; "
        f"print('RESULT ' + json.dumps(b._child_memory({L}, {N}, {H}, {max_iter}, {limit_gb!r}, {symmetric!r})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child failed (rc {proc.returncode}): {proc.stderr[-2000:]}")
    return dict(json.loads(lines[-1][len("RESULT "):]))


def measure_time(L: int, N: int, H: int, repeats: int) -> dict[str, Any]:
    """Interleaved evaluations of factored attention and the full model (same tokens)."""
    import numpy as np
    import torch

    import attnpotts  # noqa: F401
    from attnpotts.inference.objectives import all_positions_cross_entropy, coupling_penalty
    from attnpotts.models import FactoredAttention, FullPotts

    rng = np.random.default_rng(0)
    states = rng.integers(0, Q, size=(N, L))
    states = states[np.lexsort(states.T[::-1])]  # sorted like prepare_data
    tokens = torch.as_tensor(states.astype(np.int64))
    w = torch.ones(N)
    models: dict[str, torch.nn.Module] = {
        "factored": FactoredAttention(L, Q, H, variant="softmax", key_dim=16, init_std=1.0, seed=0),
        "full": FullPotts(L, Q, symmetric=True, fields=True, init_std=0.01, seed=0),
    }

    def evaluate(m: Any) -> tuple[float, float]:
        c0, t0 = time.process_time(), time.perf_counter()
        m.zero_grad(set_to_none=True)
        loss = all_positions_cross_entropy(m, tokens, w) / (N * L) + 0.005 * coupling_penalty(m)
        loss.backward()
        return time.process_time() - c0, time.perf_counter() - t0

    for m in models.values():  # warm-up (compilation, buffers)
        evaluate(m)
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in models}
    for _ in range(repeats):
        for k, m in models.items():
            runs[k].append(evaluate(m))
    med = {k: (float(np.median([r[0] for r in v])), float(np.median([r[1] for r in v])))
           for k, v in runs.items()}
    return {
        "L": L, "N": N, "H": H, "repeats": repeats, "threads": torch.get_num_threads(),
        "factored_cpu_s": med["factored"][0], "factored_wall_s": med["factored"][1],
        "full_cpu_s": med["full"][0], "full_wall_s": med["full"][1],
        "ratio_cpu": med["factored"][0] / med["full"][0],
        "ratio_wall": med["factored"][1] / med["full"][1],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    ap.add_argument("--memory", type=int, nargs="*", default=None, help="L values of the memory rows")
    ap.add_argument("--time", type=int, nargs="*", default=None, help="L values of the time rows")
    ap.add_argument("-n", "--n-sequences", type=int, default=10_000)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--max-iter", type=int, default=1)
    ap.add_argument("--memory-limit-gb", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--symmetric", action="store_true", help="memory rows: the symmetric couplings")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        mem_L, time_L, N = [100, 200], [100], 2000
    else:
        mem_L, time_L, N = [200, 500, 1000], [100, 200], args.n_sequences
    if args.memory is not None:
        mem_L = args.memory
    if args.time is not None:
        time_L = args.time

    rows_mem = []
    print(f"{'L':>5} {'N':>6} {'H':>3} {'peak GiB':>9} {'estimate':>9} {'est/peak':>8} "
          f"{'plm est':>8} {'chunk':>6} {'fit s':>7}")
    for L in mem_L:
        r = measure_memory(L, N, args.heads, args.max_iter, args.memory_limit_gb, args.symmetric)
        r["argv"] = sys.argv[1:]  # the run that measured this row (a file holds rows of several)
        rows_mem.append(r)
        print(f"{L:5d} {N:6d} {args.heads:3d} {r['peak_bytes'] / 1024**3:9.3f} "
              f"{r['estimate_bytes'] / 1024**3:9.3f} {r['ratio_estimate_to_peak']:8.2f} "
              f"{r['plm_estimate_bytes'] / 1024**3:8.2f} {r['chunk']:6d} {r['fit_wall_seconds']:7.1f}",
              flush=True)
    rows_time = []
    if time_L:
        print(f"\n{'L':>5} {'N':>6} factored CPU s  full CPU s  ratio CPU  ratio wall")
    for L in time_L:
        r = measure_time(L, N, args.heads, args.repeats)
        r["argv"] = sys.argv[1:]
        rows_time.append(r)
        print(f"{L:5d} {N:6d} {r['factored_cpu_s']:14.2f} {r['full_cpu_s']:11.2f} "
              f"{r['ratio_cpu']:10.2f} {r['ratio_wall']:11.2f}", flush=True)
    if not args.no_write:
        from attnpotts.storage import atomic_write_json, environment_info

        old: dict[str, Any] = json.loads(OUT.read_text()) if OUT.exists() else {}

        def merge(key: str, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
            """Rows of earlier runs stay unless this run measured the same (L, N, H, symmetric,
            start); rows from before the start was recorded got the mean-field start up to
            ``L (q-1) = 6000``, random factors above."""
            def same(r: dict[str, Any]) -> tuple[Any, ...]:
                start = r.get("start", "mean-field" if r["L"] * (Q - 1) <= 6000 else "random")
                return r["L"], r["N"], r["H"], bool(r.get("symmetric", False)), start

            done = {same(r) for r in new}
            return [r for r in old.get(key, []) if same(r) not in done] + new

        atomic_write_json(OUT, {"description": __doc__, "environment": environment_info(),
                                "argv": sys.argv[1:], "cpu_count": os.cpu_count(),
                                "memory": merge("memory", rows_mem), "time": merge("time", rows_time)})
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
