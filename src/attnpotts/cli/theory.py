"""``attnpotts theory``: replica learning curves of factored attention, optionally with simulations."""

from __future__ import annotations

import argparse
from typing import Any

from ..options import add_arguments
from ..workflows._theory import TheoryOptions, theory
from .common import HelpFormatter, add_common_arguments, resolve_options

__all__ = ["register", "resolve", "run"]

_EPILOG = """examples:
  attnpotts theory --out runs/theory
      q = 3, Ucol = identity, beta = 3, lambda = 0.1, rho = 1, 16 alphas from 0.5 to 8
  attnpotts theory --states 5 --beta 1 --lam 0.01 0.1 1 --alpha 0.25:16:24 --out runs/q5
  attnpotts theory --lam 0.1 1 --alpha 0.5 1 2 4 8 --simulate 500 --seeds 4 --out runs/check
      theory lines against simulations at N = 500 (convex L-BFGS student, 4 teachers)
  attnpotts theory --student full --ucol gaussian --optimal-lambda --out runs/full
  attnpotts theory --config theory.toml --out runs/x --overwrite
      theory.toml holds the same options with underscores, e.g. lam = [0.1, 1.0]

--alpha takes numbers and ranges START:STOP:COUNT (COUNT values spaced geometrically).
output folder: theory.tsv (one row per point), summary.json (a list `points`: alpha, lambda,
eps_g, eps_opt, kl, coupling and classification errors, order parameters and conjugates, the
convergence report and, with --simulate, the simulation mean and standard error), theory.png
(theory lines against simulation points), config.json. Exit status 1 if a point did not converge.
"""

def register(sub: Any) -> argparse.ArgumentParser:
    """Add the ``theory`` subcommand to ``sub``."""
    p = sub.add_parser(
        "theory",
        help="replica theory of the generalization error (with optional simulations)",
        description=(
            "Solve the replica-symmetric saddle point of the model scenario (one masked site, "
            "N i.i.d. uniform spins, teacher row w* ~ N(0, rho), value matrix Ucol, labels from "
            "softmax(beta z*)) over a grid of alpha = M/N and lambda; optionally simulate it."
        ),
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_common_arguments(p, device=True)
    add_arguments(p, TheoryOptions)
    p.set_defaults(func=run)
    return p


def resolve(args: argparse.Namespace) -> TheoryOptions:
    """The :class:`TheoryOptions` of a ``theory`` invocation (defaults < --config < flags)."""
    options: TheoryOptions = resolve_options(args, TheoryOptions)
    return options


def run(args: argparse.Namespace) -> int:
    """Run ``attnpotts theory``; return 0, or 1 if a point did not converge."""
    options = resolve(args)
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if args.no_progress:
            return
        if bar is None:
            from ..progress import Progress

            bar = Progress(total, "theory", unit="points")
        bar.set(done, total)

    try:
        result = theory(options, args.out, overwrite=args.overwrite, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    summary = result.summary
    print(f"attnpotts theory -> {args.out}")
    print(
        f"  scenario   q={options.states} Ucol={options.ucol} beta={options.beta:g} "
        f"rho={options.rho:g} student={options.student}"
    )
    for rec in summary["points"]:
        sim = rec.get("simulation")
        extra = ""
        if sim:
            extra = f"   sim {sim['mean']['eps_g']:.4f} +- {sim['stderr']['eps_g']:.4f}"
        flag = "" if rec["converged"] else "   NOT CONVERGED"
        print(
            f"  alpha={rec['alpha']:<8.4g} lambda={rec['lambda']:<8.4g} eps_g={rec['eps_g']:.5f}"
            f" (opt {rec['eps_opt']:.5f}){extra}{flag}"
        )
    for rec in summary["optimal_lambda"]:
        print(
            f"  optimal lambda at alpha={rec['alpha']:.4g}: {rec['lambda']:.4g} "
            f"(eps_g {rec['eps_g']:.5f})"
        )
    print(f"  time       {summary['timings_s']['total']:.1f} s")
    return 0 if result.all_converged else 1
