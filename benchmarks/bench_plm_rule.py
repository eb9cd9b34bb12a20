"""CPU cost and precision of the plm defaults against the previous ones, interleaved per family.

Usage:  python benchmarks/bench_plm_rule.py [--families PF00076 PF00550 PF00014] [--threads 1]

For each family (``$ATTNPOTTS_PROTEINS`` or ``--data``), in one process: the weights once, then
:class:`attnpotts.dca.PlmDCA` fits one after the other with

* ``previous``: 20 L-BFGS iterations at ``lambda_J = 0.01 (L-1)(q-1)`` (the first defaults);
* ``1 %, 0.03``: the convergence rule at 1 % over 10 iterations (cap 100), ``lambda_J = 0.03``
  (the second defaults);
* ``0.5 %, 0.01``: the rule at 0.5 % over 10 iterations, ``lambda_J = 0.01`` (the third
  defaults; the ``default`` rows of ``bench_plm_rule.json``, which this script wrote then);
* ``default``: :class:`attnpotts.dca.PlmDCA`'s current defaults (0.2 % over 5 iterations,
  ``lambda_J = 0.02``);

recording process CPU seconds of the fit, iterations, evaluations and the top-L precision (8 A,
``|i - j| >= 6``, gap state in the score). CPU ratios to ``previous`` are what each change costs;
they are measured back to back, so a shared machine's load shifts all of them alike. Writes
``benchmarks/results/bench_plm_rule.json`` atomically.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_dca import DATA, FAMILIES, RESULTS, use_threads  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="+", default=["PF00076", "PF00550", "PF00014"], choices=list(FAMILIES))
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    use_threads(ap, args.threads)
    from attnpotts.alignment import read_alignment, read_distances
    from attnpotts.dca import PlmDCA, Regularization, prepare_data
    from attnpotts.evaluation import precision_at
    from attnpotts.storage import atomic_write_json

    settings: dict[str, dict[str, Any]] = {
        "previous": {"max_iter": 20, "tolerance": None, "regularization": Regularization("evcouplings", 0.01, 0.01)},
        "1 %, 0.03": {"tolerance": 1e-2, "regularization": Regularization("evcouplings", 0.03, 0.01)},
        "0.5 %, 0.01": {"tolerance": 5e-3, "check_every": 10,
                        "regularization": Regularization("evcouplings", 0.01, 0.01)},
        "default": {},
    }
    rows: list[dict[str, Any]] = []
    print(f"{'family':8} {'setting':11} {'cpu s':>7} {'x prev':>7} {'iter':>5} {'evals':>5} {'P@L':>6}")
    for fam in args.families:
        aln, dist = FAMILIES[fam]
        msa = read_alignment(args.data / aln)
        data = prepare_data(msa)
        D = read_distances(args.data / dist, n_sites=msa.n_sites)
        base = None
        for name, options in settings.items():
            c0 = time.process_time()
            est = PlmDCA(**options).fit(data)
            cpu = time.process_time() - c0
            base = cpu if base is None else base
            p = precision_at(est.scores_, D, cutoff=8.0, min_separation=6, fractions=(1, 5))
            conv = est.convergence_
            rows.append({"family": fam, "setting": name, "cpu_s": cpu, "cpu_over_previous": cpu / base,
                         "iterations": conv.iterations, "evaluations": conv.evaluations,
                         "stop_reason": conv.stop_reason, "precision": p, "load_avg": os.getloadavg()[0]})
            print(f"{fam:8} {name:11} {cpu:7.2f} {cpu / base:7.2f} {conv.iterations:5d} {conv.evaluations:5d} "
                  f"{p['L']:6.3f}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = atomic_write_json(RESULTS / "bench_plm_rule.json", {"threads": args.threads, "rows": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
