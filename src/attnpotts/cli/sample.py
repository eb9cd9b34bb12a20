"""``attnpotts sample``: sample a synthetic data set from a generalized Potts model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..sampling import SampleConfig, SampledDataset, sample_dataset
from .common import add_common_arguments, resolve_config

__all__ = ["register", "run"]

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


def _none_or_float(text: str) -> float | str:
    if text.lower() in ("none", "off"):
        return "none"
    try:
        return float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from exc


def _defaults() -> dict[str, Any]:
    return {k: v for k, v in SampleConfig().to_dict().items() if k != "seed"}


def register(sub: Any) -> argparse.ArgumentParser:
    """Add the ``sample`` subcommand to ``sub`` (the subparsers of ``attnpotts``)."""
    p = sub.add_parser(
        "sample",
        help="sample a synthetic data set from a generalized Potts model",
        description=(
            "Sample sequences of a random generalized Potts model (J = Jsite x Ucol) with MCMC, "
            "split them into train and test, and write them with the model and a manifest."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(p)
    d = SampleConfig()
    g = p.add_argument_group("model")
    g.add_argument(
        "--n-sites", dest="n_sites", type=int, default=None, help=f"L (default {d.n_sites})"
    )
    g.add_argument(
        "--n-states", dest="n_states", type=int, default=None, help=f"q (default {d.n_states})"
    )
    g.add_argument(
        "--site", choices=["sparse", "dense"], default=None, help="Jsite ensemble (default sparse)"
    )
    g.add_argument(
        "--mean-degree",
        dest="mean_degree",
        type=float,
        default=None,
        help=f"partners per site of the sparse graph (default {d.mean_degree})",
    )
    g.add_argument(
        "--site-scale",
        dest="site_scale",
        type=float,
        default=None,
        help="std of the site weights (default 1)",
    )
    g.add_argument(
        "--colour",
        choices=["gaussian", "identity", "ferromagnetic"],
        default=None,
        help="Ucol ensemble (default gaussian)",
    )
    g.add_argument(
        "--colour-scale",
        dest="colour_scale",
        type=float,
        default=None,
        help="std of the Gaussian part of Ucol (default 1)",
    )
    g.add_argument(
        "--colour-diagonal",
        dest="colour_diagonal",
        type=float,
        default=None,
        help="diagonal added to Ucol for --colour ferromagnetic (default 1)",
    )
    g.add_argument(
        "--model-file",
        dest="model_file",
        default=None,
        help="sample this saved PottsModel (.npz) instead of a random one",
    )
    g = p.add_argument_group("temperature")
    g.add_argument(
        "--beta",
        type=float,
        default=None,
        help="inverse temperature when --target-distance is none (default 1)",
    )
    g.add_argument(
        "--target-distance",
        dest="target_distance",
        type=_none_or_float,
        default=None,
        help=f"calibrate beta to this mean pairwise Hamming distance, or 'none' "
        f"(default {d.target_distance})",
    )
    g.add_argument(
        "--beta-max",
        dest="beta_max",
        type=float,
        default=None,
        help=f"largest beta the calibration tries (default {d.beta_max})",
    )
    g = p.add_argument_group("sampling")
    g.add_argument("--n-train", dest="n_train", type=int, default=None, help=f"default {d.n_train}")
    g.add_argument("--n-test", dest="n_test", type=int, default=None, help=f"default {d.n_test}")
    g.add_argument(
        "--method",
        choices=["gibbs", "parallel_tempering"],
        default=None,
        help="independent chains or parallel tempering (default gibbs)",
    )
    g.add_argument(
        "--rule",
        choices=["gibbs", "metropolis"],
        default=None,
        help="single-site update (default gibbs = heat-bath)",
    )
    g.add_argument("--sweep", choices=["sequential", "random"], default=None, help="site order")
    g.add_argument(
        "--n-chains",
        dest="n_chains",
        type=int,
        default=None,
        help=f"independent chains (default {d.n_chains})",
    )
    g.add_argument(
        "--n-temperatures",
        dest="n_temperatures",
        type=int,
        default=None,
        help=f"ladder size for parallel tempering (default {d.n_temperatures})",
    )
    g.add_argument(
        "--pilot-sweeps",
        dest="pilot_sweeps",
        type=int,
        default=None,
        help=f"pilot run measuring the autocorrelation time (default {d.pilot_sweeps})",
    )
    g.add_argument(
        "--burn-in",
        dest="burn_in",
        type=int,
        default=None,
        help="burn-in sweeps (default: 20 autocorrelation times)",
    )
    g.add_argument(
        "--thin", type=int, default=None, help="keep every THIN-th sweep (default: 2 tau)"
    )
    g.add_argument("--dtype", choices=["float64", "float32"], default=None, help="kernel precision")
    p.set_defaults(func=run)
    return p


def _config_from_args(args: argparse.Namespace) -> SampleConfig:
    values = resolve_config(args, _defaults())
    if values.get("target_distance") == "none":
        values["target_distance"] = None
    if values.get("model_file") is not None:
        values["model_file"] = str(Path(values["model_file"]))
    try:
        return SampleConfig.from_dict(values)
    except TypeError as exc:  # a TOML value of the wrong kind
        raise ValidationError(f"bad sample option: {exc}") from exc


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
    config = _config_from_args(args)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        # fail before spending time sampling
        raise FileExistsError(
            f"output folder {out} exists and is not empty; choose another --out or pass --overwrite"
        )
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
        ds = sample_dataset(config, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    ds.save(out, overwrite=args.overwrite)
    print(format_summary(ds, out))
    return 0
