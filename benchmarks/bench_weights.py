"""Benchmark: sequence weights (80% identity) of the numba kernel against two baselines.

Baselines, measured in the same run on the same data:
  * ``numpy-rows``: one vectorised comparison of every row with all others (``(X == X[i]).sum``);
  * ``one-hot-matmul``: identities as blocked float32 one-hot matrix products (BLAS).
Data: synthetic families of L = 100 columns (sequences mutated from 200 ancestors, 30% sites
resampled, 10% exact duplicates), seeded; plus PF00595 from $ATTNPOTTS_PROTEINS (default data/proteins) when it exists.
Prints a table and writes benchmarks/results/bench_weights.json.

Run: python benchmarks/bench_weights.py [--sizes 2000 5000 40000] [--baseline-max 5000]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from attnpotts.alignment import min_matches, read_alignment, sequence_weights
from attnpotts.storage import atomic_write_json, environment_info

ROOT = Path(__file__).resolve().parents[1]
PROTEINS = Path(os.environ.get("ATTNPOTTS_PROTEINS", ROOT / "data" / "proteins"))


def family(n: int, L: int = 100, q: int = 21, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    anc = rng.integers(0, q, size=(200, L))
    x = anc[rng.integers(0, 200, size=n)]
    x = np.where(rng.random((n, L)) < 0.3, rng.integers(0, q, size=(n, L)), x)
    dup = rng.integers(0, n, size=n // 10)
    x[dup] = x[rng.integers(0, n, size=dup.size)]
    return x.astype(np.int8)


def numpy_rows(x: np.ndarray, threshold: float) -> np.ndarray:
    need = min_matches(threshold, x.shape[1])
    counts = np.array([((x == x[i]).sum(axis=1) >= need).sum() for i in range(x.shape[0])])
    return 1.0 / counts


def onehot_matmul(x: np.ndarray, threshold: float, q: int = 21, block: int = 2048) -> np.ndarray:
    n, L = x.shape
    need = min_matches(threshold, L)
    X = np.zeros((n, L * q), dtype=np.float32)
    X[np.arange(n)[:, None], np.arange(L) * q + x] = 1.0
    counts = np.zeros(n)
    for s in range(0, n, block):
        ident = X[s : s + block] @ X.T  # (block, n) numbers of equal columns
        counts[s : s + block] = (ident >= need - 0.5).sum(axis=1)
    return 1.0 / counts


def timed(fn, *args) -> tuple[float, np.ndarray]:
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 40000])
    ap.add_argument("--baseline-max", type=int, default=5000, help="largest N for the baselines")
    ap.add_argument("--threshold", type=float, default=0.8)
    args = ap.parse_args()
    sequence_weights(family(50), threshold=args.threshold)  # compile (cached) outside the timings
    load_before = os.getloadavg()[0]
    rows = []
    datasets = [(f"synthetic N={n} L=100", family(n)) for n in args.sizes]
    real = PROTEINS / "PF00595" / "PF00595_mgap6.fasta.gz"
    if real.is_file():
        msa = read_alignment(real)
        datasets.append((f"PF00595 N={msa.n_sequences} L={msa.n_sites}", msa.states))
    for name, x in datasets:
        t_nb, sw = timed(lambda x=x: sequence_weights(x, threshold=args.threshold))
        row = {
            "data": name,
            "N": int(x.shape[0]),
            "L": int(x.shape[1]),
            "unique": sw.n_unique,
            "n_eff": sw.n_eff,
            "numba_s": t_nb,
        }
        if x.shape[0] <= args.baseline_max:
            t_np, w_np = timed(numpy_rows, x, args.threshold)
            t_mm, w_mm = timed(onehot_matmul, x, args.threshold)
            assert np.allclose(w_np, sw.weights) and np.allclose(w_mm, sw.weights)
            row.update(
                numpy_rows_s=t_np,
                matmul_s=t_mm,
                speedup_vs_numpy=t_np / t_nb,
                speedup_vs_matmul=t_mm / t_nb,
            )
        rows.append(row)
    head = f"{'data':<28} {'unique':>7} {'N_eff':>9} {'numba s':>8} {'rows s':>8} {'matmul s':>9} {'x rows':>7} {'x matmul':>8}"
    print(head)
    for r in rows:
        cells = [format(r[k], ".2f") if k in r else "-" for k in ("numpy_rows_s", "matmul_s")] + [
            format(r[k], ".1f") if k in r else "-"
            for k in ("speedup_vs_numpy", "speedup_vs_matmul")
        ]
        print(
            f"{r['data']:<28} {r['unique']:>7} {r['n_eff']:>9.1f} {r['numba_s']:>8.2f} "
            f"{cells[0]:>8} {cells[1]:>9} {cells[2]:>7} {cells[3]:>8}"
        )
    out = ROOT / "benchmarks" / "results" / "bench_weights.json"
    load_after = os.getloadavg()[0]
    print(
        f"load average (1 min) before/after: {load_before:.1f} / {load_after:.1f} on {os.cpu_count()} cpus"
    )
    atomic_write_json(
        out,
        {
            "threshold": args.threshold,
            "rows": rows,
            "load_average_before_after": [load_before, load_after],
            "cpu_count": os.cpu_count(),
            "environment": environment_info(),
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
