"""The full model's pair kernels against a copy of the same matrix: the fixed ``L^2 q^2`` part of
an evaluation.

Why: plm stores each pair once (``J[i, j]``, ``i < j``) and every evaluation expands it into the
symmetric ``(L q) x (L q)`` matrix the fused pass reads (``_expand_pairs``), then reduces the
pass's gradient accumulators back onto the pairs (``_reduce_pairs``, one accumulator per thread
below ``L q = 2000``, one in all above). On small alignments these passes weigh as much as the
data term. A copy of a matrix of the same size (``numpy.copyto``) in the same run is the
yardstick: a pass that moves the same bytes cannot be much faster than it.

Usage:
    python benchmarks/bench_pair_kernels.py [--lengths 53 82 119 202] [--accumulators 1 2]
        [--repeats 15] [--threads 2] [--baseline REV] [--out bench_pair_kernels.json]

float32, ``q = 21``; the passes are timed in turn (interleaved), each ``--repeats`` times after
one untimed call; the table gives medians in ms and each kernel's median over the copy's.
``--baseline REV`` also times the two kernels as they were at git revision ``REV`` (their
section of ``src/attnpotts/models/kernels.py``, compiled in this process; both signatures, with
and without the pair index arrays, are handled) and checks that they give the same matrix and,
to float32 rounding, the same reduction.
Writes ``benchmarks/results/bench_pair_kernels.json`` (``--out``) atomically.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_dca import _check_out  # noqa: E402

_Q = 21
_SECTION = "# ----------------------------------------------------------------------------------- pairs"


def baseline_kernels(rev: str) -> dict[str, Any]:
    """``_expand_pairs`` and ``_reduce_pairs`` (and their helpers) as of git revision ``rev``."""
    import numba as nb

    source = subprocess.run(["git", "show", f"{rev}:src/attnpotts/models/kernels.py"], cwd=ROOT,
                            capture_output=True, text=True)
    if source.returncode != 0:
        raise SystemExit(f"--baseline {rev}: {source.stderr.strip()}")
    text = source.stdout
    start, end = text.find(_SECTION), text.find("class PairWorkspace")
    if start < 0 or end < start:
        raise SystemExit(f"--baseline {rev}: its kernels.py has no pair kernels section")
    namespace: dict[str, Any] = {"nb": nb, "np": np, "__name__": "baseline_pair_kernels"}
    section = text[start:end].replace("cache=True", "cache=False")  # no file to cache beside
    exec(compile(section, f"{rev}:kernels.py", "exec"), namespace)
    return namespace


def _with_pairs(kernel: Any, length: int) -> Callable[..., None]:
    """The kernel called with the pair index arrays when its signature (the old one) takes them."""
    if len(inspect.signature(kernel.py_func).parameters) == 3:
        return kernel
    i, j = (np.ascontiguousarray(x, dtype=np.int64) for x in np.triu_indices(length, 1))
    return lambda first, q, last: kernel(first, i, j, q, last)


def measure(length: int, accumulators: int, repeats: int, seed: int = 0,
            baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    """Median seconds of expand, reduce and a same-size copy at one ``L`` and accumulator count
    (and of the baseline's kernels)."""
    from attnpotts.models.kernels import _expand_pairs, _reduce_pairs

    rng = np.random.default_rng(seed)
    width = length * _Q
    pairs = rng.standard_normal((length * (length - 1) // 2, _Q, _Q), dtype=np.float32)
    w = np.zeros((width, width), dtype=np.float32)
    grads = rng.standard_normal((accumulators, width, width), dtype=np.float32)
    out = np.empty_like(pairs)
    copy_to = np.empty_like(w)
    passes: dict[str, Callable[[], None]] = {
        "expand": lambda: _expand_pairs(pairs, _Q, w),
        "reduce": lambda: _reduce_pairs(grads, _Q, out),
        "copy": lambda: np.copyto(copy_to, grads[0]),
    }
    if baseline is not None:
        old_expand = _with_pairs(baseline["_expand_pairs"], length)
        old_reduce = _with_pairs(baseline["_reduce_pairs"], length)
        w_old, out_old = np.zeros_like(w), np.empty_like(pairs)
        passes["expand_baseline"] = lambda: old_expand(pairs, _Q, w_old)
        passes["reduce_baseline"] = lambda: old_reduce(grads, _Q, out_old)
    for run in passes.values():
        run()  # compile or load, touch the pages
    if baseline is not None and not (np.array_equal(w, w_old) and np.allclose(out, out_old, rtol=1e-5, atol=1e-5)):
        raise SystemExit(f"L = {length}: the baseline's kernels give other numbers than this tree's")
    times: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(repeats):
        for name, run in passes.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(v) for name, v in times.items()}
    return {"L": length, "accumulators": accumulators, "matrix_mib": w.nbytes / 2**20,
            "median_s": med, "over_copy": {k: v / med["copy"] for k, v in med.items() if k != "copy"},
            "all_s": times}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", nargs="+", type=int, default=[53, 82, 119, 202])
    ap.add_argument("--accumulators", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--baseline", default=None, help="git revision whose pair kernels are timed too")
    ap.add_argument("--out", default="bench_pair_kernels.json", help="file name in benchmarks/results/")
    args = ap.parse_args(argv)
    if min(args.lengths) < 2 or min(args.accumulators) < 1 or args.repeats < 1 or args.threads < 1:
        ap.error("--lengths must be >= 2, --accumulators, --repeats and --threads >= 1")
    out = _check_out(ap, args.out, "rows", ("argv", "baseline"), folder=RESULTS)
    from attnpotts.storage import atomic_write_json, environment_info
    from attnpotts.threads import set_threads

    set_threads(args.threads)
    baseline = None if args.baseline is None else baseline_kernels(args.baseline)
    rows = [measure(L, c, args.repeats, baseline=baseline) for L in args.lengths for c in args.accumulators]
    names = ["expand", "reduce", "copy"] + (["expand_baseline", "reduce_baseline"] if baseline else [])
    print(f"{'L':>4} {'acc':>3} {'MiB':>6} " + " ".join(f"{n + ' ms':>18}" for n in names)
          + " " + " ".join(f"{n + '/copy':>20}" for n in names if n != "copy"))
    for r in rows:
        m = r["median_s"]
        print(f"{r['L']:>4} {r['accumulators']:>3} {r['matrix_mib']:>6.1f} "
              + " ".join(f"{1e3 * m[n]:>18.2f}" for n in names)
              + " " + " ".join(f"{r['over_copy'][n]:>20.2f}" for n in names if n != "copy"))
    path = atomic_write_json(out, {"description": __doc__,
                                                  "argv": sys.argv[1:] if argv is None else argv,
                                                  "baseline": args.baseline,
                                                  "environment": environment_info(), "rows": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
