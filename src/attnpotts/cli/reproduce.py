"""``attnpotts reproduce``: the paper's experiments in one command, with a report."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from ..errors import ValidationError
from ..experiments import make_executor
from ..experiments.reproduce import STAGES, ReproduceConfig, reproduce
from ..options import add_arguments
from .common import HelpFormatter, add_common_arguments, resolve_options

__all__ = ["register", "run"]

_EPILOG = """examples:
  attnpotts reproduce                       # built-in default (L = q = 20, M = 3000), all stages
  attnpotts reproduce --quick --out /tmp/q  # smoke version (small system; about a minute)
  attnpotts reproduce --full --executor dask --address scheduler:8786 --out runs/full
  attnpotts reproduce --executor dask --workers 4   # a Dask cluster of 4 local processes
  attnpotts reproduce --stages depth,couplings --workers 2
  attnpotts reproduce --config my.toml      # any option of the preset, e.g. depths = [1, 2, 6]
  attnpotts reproduce --quick --n-seeds 1 --depths 1 2   # or as flags (they override the file)

Stages: depth (transformers of 1-4 layers vs one factored layer, each early-stopped), scaling
(excess loss vs the number of training sequences M, with fitted slopes), couplings (learned A, V vs
true Jsite, Ucol), theory (replica learning curves vs simulations), equivalence (MLM loss vs
pseudo-likelihood). The report opens with a verdict on each claim of the paper, computed from
results.json by stated rules. Running the same command again resumes: finished runs in OUT/runs are
reused. Progress: one line per finished run with the time left (estimated from the runs' costs).

output folder: report.html (self-contained), results.json, figures/*.png, summary.json,
config.json, runs/ (one folder per run: config, seed, versions, timings, metrics)
"""


def _duration(seconds: float) -> str:
    """``"1 min 05 s"`` style (``"0 s"`` for negative or non-finite input)."""
    s = round(seconds) if seconds == seconds and seconds > 0 else 0
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def _stages(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in names if s not in STAGES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown stage(s) {', '.join(bad) or '(none given)'}; choose from {', '.join(STAGES)}"
        )
    return names


def register(sub: Any) -> argparse.ArgumentParser:
    """Add the ``reproduce`` subcommand to ``sub`` (the subparsers of ``attnpotts``)."""
    p = sub.add_parser(
        "reproduce",
        help="run the paper's experiments and write an HTML report",
        description=(
            "Depth study, learned couplings, replica theory vs simulations and the MLM / "
            "pseudo-likelihood equivalence, as sweeps of runs on local processes or a Dask "
            "cluster; writes results.json, figures and a self-contained report.html."
        ),
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_common_arguments(p, default_out="runs/reproduce", device=True, threads=False)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smoke version (under 2 minutes)")
    size.add_argument("--full", action="store_true",
                      help="larger systems, several seeds, regularisation grids (for a cluster)")
    p.add_argument("--stages", type=_stages, default=None,
                   help=f"comma-separated subset of {','.join(STAGES)} (default: all)")
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="local processes (default) or a Dask distributed cluster")
    p.add_argument("--address", default=None,
                   help="Dask scheduler HOST:PORT (with --executor dask; without it, a local Dask "
                        "cluster of --workers processes)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes on this machine (default: 1 with --quick, else the CPU "
                        "count); they end with this command, even when it is killed")
    add_arguments(p, ReproduceConfig)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``attnpotts reproduce``."""
    mode = "quick" if args.quick else "full" if args.full else "default"
    config = resolve_options(args, ReproduceConfig, base=ReproduceConfig.preset(mode).to_dict())
    from ..workflows.resources import check_reproduce_resources

    if args.address is None:  # worker processes on this machine: checked before they start
        workers = args.workers if args.workers is not None else (
            1 if mode == "quick" else max(1, os.cpu_count() or 1)
        )
        check_reproduce_resources(config, workers, args.memory_limit_gb)
        executor = make_executor(args.executor, n_workers=workers)
    else:
        if args.workers is not None:
            raise ValidationError("--workers is for workers on this machine; a Dask cluster at --address has its own")
        executor = make_executor(args.executor, address=args.address)
        try:  # each of the cluster's workers holds one run at a time
            check_reproduce_resources(
                config, max(1, int(executor.describe()["n_workers"])), args.memory_limit_gb
            )
        except BaseException:
            executor.close()
            raise
    t0 = time.perf_counter()

    tty = sys.stderr.isatty()
    pending = [False]  # a progress line without its newline (terminal only)

    def on_stage(name: str, event: str) -> None:
        if pending[0]:
            print(file=sys.stderr)
            pending[0] = False
        print(f"[{time.perf_counter() - t0:7.1f} s] {name}: {event}", file=sys.stderr, flush=True)

    def on_progress(info: dict[str, Any]) -> None:
        line = (
            f"[{time.perf_counter() - t0:7.1f} s] {info['stage']}: {info['done']}/{info['total']} runs "
            f"done, about {_duration(info['eta_s'])} left"
        )
        if tty:  # one line, rewritten in place
            print("\r" + line.ljust(79), end="", file=sys.stderr, flush=True)
            pending[0] = True
        else:
            print(line, file=sys.stderr, flush=True)

    try:
        result = reproduce(
            config, args.out, executor=executor, overwrite=args.overwrite,
            on_stage=on_stage, on_progress=None if args.no_progress else on_progress,
        )  # fmt: skip
    finally:
        executor.close()
    if pending[0]:
        print(file=sys.stderr)
    print(f"report:  {result.report}")
    print(f"results: {result.results_path}")
    stages = result.results["stages"]
    if "depth" in stages:
        d = stages["depth"]["summary"]
        n = d["layers_to_match"]
        print(
            f"depth study: optimal loss {d['optimal_loss']:.4f}; "
            + (f"{n} transformer layer(s) come within {d['match_tolerance']:.0%} of the factored layer"
               if n is not None else
               f"no transformer up to {d['max_depth']} layers comes within "
               f"{d['match_tolerance']:.0%} of the factored layer")
        )  # fmt: skip
    for c in result.results["claims"]:
        print(f"claim ({c['id']}): {c['verdict']} - {c['reason']}")
    if "equivalence" in stages:
        e = stages["equivalence"]["summary"]
        print(f"equivalence: max relative difference {e['max_rel_difference']:.2e}")
    if "theory" in stages:
        t = stages["theory"]["summary"]
        print(f"theory: {t['n_agree']}/{t['n_points']} simulation points agree")
    return 0
