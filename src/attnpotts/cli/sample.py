"""``attnpotts sample``: sample a synthetic data set from a generalized Potts model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..options import add_arguments
from ..workflows._sample import SampleOptions, sample
from .common import HelpFormatter, add_common_arguments, resolve_options

if TYPE_CHECKING:
    from ..sampling import SampledDataset

__all__ = ["register", "resolve", "run"]

_EPILOG = """examples:
  attnpotts sample --out runs/sample
      the library default: L = 20, q = 20, sparse graph (mean degree 3), Gaussian Ucol,
      beta calibrated to a mean pairwise Hamming distance of 0.88 (optimal loss ~1-2 nats),
      3000 train + 1000 test sequences
  attnpotts sample --out runs/hot --target-distance none --beta 0.5 --n-train 500
  attnpotts sample --out runs/pt --method parallel_tempering --colour ferromagnetic
  attnpotts sample --config sample.toml --out runs/x --overwrite
      sample.toml holds the same options with underscores, e.g. n_train = 500

output folder: model.npz, sequences.npz (train, test), train.fasta, test.fasta (q <= 26),
summary.json (diagnostics, calibration, sampler settings), config.json
"""


def register(sub: Any) -> argparse.ArgumentParser:
    """Add the ``sample`` subcommand to ``sub``: one flag per field of
    :class:`~attnpotts.workflows.SampleOptions`."""
    p = sub.add_parser(
        "sample",
        help="sample a synthetic data set from a generalized Potts model",
        description=(
            "Sample sequences of a random generalized Potts model (J = Jsite x Ucol) with MCMC, "
            "split them into train and test, and write them with the model and a manifest."
        ),
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_common_arguments(p)
    add_arguments(p, SampleOptions)
    p.set_defaults(func=run)
    return p


def resolve(args: argparse.Namespace) -> SampleOptions:
    """The :class:`SampleOptions` of a ``sample`` invocation (defaults < --config < flags)."""
    options: SampleOptions = resolve_options(args, SampleOptions)
    return options


def format_summary(ds: SampledDataset, out: Path) -> str:
    """A readable summary of a sampled data set."""
    m = ds.manifest
    dg = m["diagnostics"]
    sp = m["sampler"]
    model = m["model"]
    lines = [f"attnpotts sample -> {out}"]
    spec = model.get("spec")
    if spec is not None:
        lines.append(
            f"  model      L={model['n_sites']} q={model['n_states']}  Jsite={spec['site']}"
            + (f" (mean degree {spec['mean_degree']:g})" if spec["site"] == "sparse" else "")
            + f"  Ucol={spec['colour']}  seed={m['seed']}"
        )
    else:
        lines.append(
            f"  model      {model['model_file']}  L={model['n_sites']} q={model['n_states']}"
        )
    cal = m.get("calibration")
    if cal is not None:
        lo, hi = cal["curve"]["reachable"]
        lines.append(
            f"  beta       {model['beta']:.4f}  (calibrated: distance {cal['distance']:.4f} "
            f"+- {cal['stderr']:.4f}, target {cal['target']}; reachable [{lo:.3f}, {hi:.3f}])"
        )
    else:
        lines.append(f"  beta       {model['beta']:.4f}")
    lines.append(
        f"  sampler    {sp['rule']}, {sp['sweep']} sweeps"
        + (" with parallel tempering" if sp["method"] == "parallel_tempering" else "")
        + f", {sp['n_chains']} chains, "
        f"burn-in {sp['burn_in_sweeps']} sweeps, thin {sp['thin']} (tau = {dg['tau_sweeps']:.1f} sweeps)"
    )
    rhat = dg["energy_split_rhat"]
    lines.append(
        f"  mixing     energy split-R-hat {rhat:.3f} ({'ok' if dg['mixing_ok'] else 'NOT MIXED'}), "
        f"acceptance {dg['acceptance_rate']:.3f}"
    )
    lines.append(f"  sequences  {m['sizes']['n_train']} train, {m['sizes']['n_test']} test")
    if dg.get("train_mean_pairwise_hamming") is not None:
        lines.append(
            f"  distance   mean pairwise Hamming {dg['train_mean_pairwise_hamming']:.4f} (train)"
        )
    if "conditional_entropy" in dg:
        lines.append(
            f"  optimum    conditional entropy {dg['conditional_entropy']:.4f} +- "
            f"{dg['conditional_entropy_stderr']:.4f} nats/site; true-model test loss "
            f"{dg['true_model_test_loss']:.4f} +- {dg['true_model_test_loss_stderr']:.4f}"
        )
    lines.append(f"  time       {m['timings_s']['total']:.1f} s")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``attnpotts sample``; return the exit status."""
    options = resolve(args)
    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if args.no_progress:
            return
        from ..progress import Progress

        bar = bars.get(stage)
        if bar is None:
            unit = "runs" if stage == "calibration" else "sweeps"
            bar = bars[stage] = Progress(total, stage, unit=unit)
        bar.set(done, total)

    try:
        ds = sample(options, args.out, overwrite=args.overwrite, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    print(format_summary(ds, Path(args.out)))
    return 0
