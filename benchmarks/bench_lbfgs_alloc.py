"""Allocation cost of a plm fit: the code at a baseline commit against this tree, interleaved.

Usage:  python benchmarks/bench_lbfgs_alloc.py [--baseline REV] [--repeats 3] [--iterations 20]
        [--sequences 700] [--length 200] [--threads 2] [--seed 0]

A small-N, long synthetic alignment (``--sequences`` x ``--length``, q = 21: mutated copies of
ten random ancestors, seed ``--seed``) is fitted by :class:`attnpotts.dca.PlmDCA` with exactly
``--iterations`` L-BFGS iterations (no convergence rule), each fit in a fresh process that imports
either the package as of ``--baseline`` (default ``71a10fc``, the last commit before L-BFGS and the
fused pair kernel's backward reused their parameter-sized buffers; extracted with ``git archive``
into a temporary folder) or the ``src/`` of this tree. Both processes compile the kernels and
fit a small warm-up first; then ``getrusage`` and the wall clock are read around the measured fit:
user CPU, system CPU (mostly page faults of freshly ``mmap``-ed temporaries) and minor page
faults. The two versions alternate (``--repeats`` rounds, the order flipped every round) so a
shared machine's load reaches both alike; the table gives every run and the ratios new / old of
the medians. The fits must give the same scores bit for bit (a SHA-256 of ``scores_`` is
compared). Writes ``benchmarks/results/bench_lbfgs_alloc.json`` atomically.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
_Q = 21
_METRICS = ("user_s", "system_s", "minor_faults", "wall_s")


def _child(args: argparse.Namespace) -> int:
    """One measured fit in this process (the package comes from ``PYTHONPATH``); JSON on stdout."""
    import hashlib
    import resource
    import time

    import numba
    import numpy as np
    import torch

    import attnpotts
    from attnpotts.dca import PlmDCA, prepare_data

    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    ancestors = rng.integers(0, _Q, size=(10, args.length))
    which = rng.integers(0, 10, size=args.sequences)
    mutate = rng.random((args.sequences, args.length)) < 0.3
    states = np.where(mutate, rng.integers(0, _Q, size=mutate.shape), ancestors[which])
    data = prepare_data(states, n_states=_Q)
    PlmDCA(max_iter=2, tolerance=None).fit(prepare_data(states[:50, :20], n_states=_Q))  # compile
    before, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    est = PlmDCA(max_iter=args.iterations, tolerance=None).fit(data)
    wall, after = time.perf_counter() - wall0, resource.getrusage(resource.RUSAGE_SELF)
    scores = np.ascontiguousarray(est.scores_)
    conv = est.convergence_
    print(json.dumps({
        "package": str(Path(attnpotts.__file__).resolve().parent),
        "user_s": after.ru_utime - before.ru_utime,
        "system_s": after.ru_stime - before.ru_stime,
        "minor_faults": after.ru_minflt - before.ru_minflt,
        "wall_s": wall,
        "iterations": conv.iterations,
        "evaluations": conv.evaluations,
        "scores_sha256": hashlib.sha256(scores.tobytes()).hexdigest(),
    }))
    return 0


def _extract(rev: str, dest: Path) -> Path:
    """``src/`` of commit ``rev`` written under ``dest``; returns that ``src`` folder."""
    done = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"--baseline {rev!r} is not a commit of {ROOT} (git archive: "
                         f"{done.stderr.decode(errors='replace').strip()}); pass a revision of this repository")
    blob = done.stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


def _run(src: Path, args: argparse.Namespace, numba_cache: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(src), NUMBA_CACHE_DIR=str(numba_cache),
               NUMBA_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads),
               OMP_WAIT_POLICY="passive")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child",
           *(f"--{k}={getattr(args, k)}" for k in ("iterations", "sequences", "length", "threads", "seed"))]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    row: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if Path(row["package"]) != (src / "attnpotts").resolve():
        raise RuntimeError(f"the fit imported {row['package']}, not the package under {src}")
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="71a10fc", help="git revision of the 'old' code")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--sequences", type=int, default=700)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args)

    from attnpotts.storage import atomic_write_json

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_lbfgs_alloc_") as tmp:
        old_src = _extract(args.baseline, Path(tmp) / "baseline")
        versions = {"old": (old_src, Path(tmp) / "numba-old"), "new": (ROOT / "src", Path(tmp) / "numba-new")}
        print(f"{'round':>5} {'code':4} {'user s':>7} {'sys s':>7} {'minflt':>9} {'wall s':>7} {'evals':>5}")
        for r in range(args.repeats):
            for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
                src, cache = versions[name]
                row = {"round": r, "code": name, "load_avg": os.getloadavg()[0], **_run(src, args, cache)}
                rows.append(row)
                print(f"{r:5d} {name:4} {row['user_s']:7.2f} {row['system_s']:7.2f} "
                      f"{row['minor_faults']:9d} {row['wall_s']:7.2f} {row['evaluations']:5d}", flush=True)
    medians = {name: {m: statistics.median(row[m] for row in rows if row["code"] == name) for m in _METRICS}
               for name in ("old", "new")}
    ratios = {m: medians["new"][m] / medians["old"][m] for m in _METRICS}
    identical = len({row["scores_sha256"] for row in rows}) == 1
    print("median  " + "  ".join(f"{m} old {medians['old'][m]:.4g} new {medians['new'][m]:.4g}" for m in _METRICS))
    print("new/old " + "  ".join(f"{m} {ratios[m]:.3f}" for m in _METRICS))
    print(f"scores bit-identical across all runs: {identical}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    settings = {k: getattr(args, k) for k in ("baseline", "repeats", "iterations", "sequences", "length",
                                              "threads", "seed")}
    path = atomic_write_json(RESULTS / "bench_lbfgs_alloc.json", {
        "settings": {**settings, "n_states": _Q}, "rows": rows, "medians": medians,
        "ratios_new_over_old": ratios, "scores_identical": identical,
    })
    print(f"wrote {path}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
