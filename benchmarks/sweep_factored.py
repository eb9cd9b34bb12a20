"""Sweep of FactoredDCA settings: top-L contact precision vs plm on protein families.

Why: factored attention should come close to the full model's top-L precision. This script
fits :class:`attnpotts.dca.FactoredDCA` under a list of configurations (one fit at a time; each
uses all cores), records top-L precision (8 A, |i-j| >= 6) with the gap state excluded from the
score (the project's default) and kept (plmc's score), the wall time, and optionally the
precision along the L-BFGS run (every ``--trace`` objective evaluations). It prints a table and
writes ``benchmarks/results/factored_sweep.json`` (merged with earlier runs by configuration key).

Usage:
    python benchmarks/sweep_factored.py                    # the selection sweep on PF00014, PF00595
    python benchmarks/sweep_factored.py --quick            # reduced: defaults + plm on PF00014 only
    python benchmarks/sweep_factored.py --heldout          # chosen defaults + plm on held-out families
    python benchmarks/sweep_factored.py --only NAME ...    # run the named configurations
    python benchmarks/sweep_factored.py --lofo             # leave-one-family-out over all 8 families
    python benchmarks/sweep_factored.py --options          # the default's lambda and heads, 8 families
    python benchmarks/sweep_factored.py --options --only hist20 hist60 hist120 \
        --options-out benchmarks/results/factored_sweep_history.json --max-evaluations 90 \
        --tolerance 0.005                                  # the L-BFGS memory within the time goal
    python benchmarks/sweep_factored.py --options --only hist60 sym60 --families PF13354:700 \
        --options-out benchmarks/results/factored_sweep_symmetric_small.json
                                                       # FAMILY:N, N sequences drawn from FAMILY

``--lofo`` fits plm and the ``LOFO_CONFIGS`` on every family with the precision traced along the
run; each (configuration, evaluation budget) is a candidate. For each held-out family the
candidate with the best mean top-L precision on the other seven is chosen among those whose fit
time is at most twice plm's there (the time goal of factored attention), and its precision on
the held-out family is reported (``benchmarks/results/factored_lofo.json``).
The data folder is ``$ATTNPOTTS_PROTEINS`` (default ``data/proteins`` in the repository).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from attnpotts.alignment import read_alignment, read_distance_table
from attnpotts.dca import FactoredDCA, PlmDCA, Regularization, prepare_data
from attnpotts.evaluation import contact_scores, precision_at
from attnpotts.storage import atomic_write_json, environment_info

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ATTNPOTTS_PROTEINS", ROOT / "data" / "proteins"))
OUT = Path(__file__).resolve().parent / "results" / "factored_sweep.json"
LOFO_OUT = Path(__file__).resolve().parent / "results" / "factored_lofo.json"

FAMILIES: dict[str, tuple[str, str]] = {
    "PF00014": ("PF00014/PF00014_mgap6.fasta.gz", "PF00014/PF00014.distances.tsv"),
    "PF00595": ("PF00595/PF00595_mgap6.fasta.gz", "PF00595/PF00595.distances.tsv"),
    "PF00035": ("PF00035/PF00035_full.fasta", "PF00035/PF00035.distances.tsv"),
    "PF00076_2X1B": ("PF00076_2X1B/PF00076.align.80", "PF00076_2X1B/PF00076_2X1B.distances.tsv"),
    "PF00200": ("PF00200/PF00200.fasta", "PF00200/PF00200.distances.tsv"),
    "PF13354": ("PF13354/PF13354_wo_ref_seqs.fasta.gz", "PF13354/PF13354.distances.tsv"),
    "PF00072_1MVO": ("PF00072_1MVO/PF00072.align.80", "PF00072_1MVO/PF00072_1MVO.distances.tsv"),
    "PF00550_1T8K": ("PF00550_1T8K/PF00550.align.80", "PF00550_1T8K/PF00550_1T8K.distances.tsv"),
}
SELECTION = ("PF00014", "PF00595")
HELDOUT = ("PF00035", "PF00076_2X1B", "PF00200")

#: name -> FactoredDCA options (plus "lambda_scale": factor on the default coupling lambda).
#: Every configuration but "default" starts from random factors (``start="random"``, the setting
#: of this sweep).
#: "old" is the setting before this sweep; "default" means FactoredDCA() as it is at run time
#: (when this sweep ran: init_std 1, 600 iterations, L-BFGS memory 20 = "i10_h20_it600"; since
#: then the mean-field start and 25 iterations). Every configuration names the options it
#: changes from the old setting, so it means the same after defaults change.
CONFIGS: dict[str, dict[str, Any]] = {
    "old": {"n_heads": 32, "key_dim": 16, "init_std": 0.1, "factor_l2": 0.0, "lambda_scale": 1.0,
            "max_iter": 300, "lbfgs_history": 5},
    "i05": {"init_std": 0.5, "max_iter": 300, "lbfgs_history": 5},
    "i10": {"init_std": 1.0, "max_iter": 300, "lbfgs_history": 5},
    "i05_f1e-3": {"init_std": 0.5, "factor_l2": 1e-3, "max_iter": 300, "lbfgs_history": 5},
    "i05_f1e-3_noJ": {"init_std": 0.5, "factor_l2": 1e-3, "lambda_scale": 0.0, "max_iter": 300,
                      "lbfgs_history": 5},
    "i05_f1e-2_noJ": {"init_std": 0.5, "factor_l2": 1e-2, "lambda_scale": 0.0, "max_iter": 300,
                      "lbfgs_history": 5},
    "i05_J3": {"init_std": 0.5, "lambda_scale": 3.0, "max_iter": 300, "lbfgs_history": 5},
    "i10_J3": {"init_std": 1.0, "lambda_scale": 3.0, "max_iter": 300, "lbfgs_history": 5},
    "i10_J03": {"init_std": 1.0, "lambda_scale": 0.3, "max_iter": 300, "lbfgs_history": 5},
    "i10_h20": {"init_std": 1.0, "lbfgs_history": 20, "max_iter": 300},
    "i10_h20_it600": {"init_std": 1.0, "lbfgs_history": 20, "max_iter": 600},
    "default": {},
}

#: Leave-one-family-out grid (each traced, so every evaluation budget up to ``max_iter`` is a
#: candidate): random values (as before) or zero values (zero couplings at the start, like plm).
#: "mf" is the mean-field start (queries and keys from the mean-field contact map,
#: ``attnpotts.dca.factored_start``); "v1"/"v0" start from random factors. "mf_s1_pos3" and
#: "rand_pos3": the mean-field start with sharpness 1 / random factors, both with the queries and
#: keys preconditioned (``position_scale = 3``) and an evaluation budget around twice plm's.
LOFO_CONFIGS: dict[str, dict[str, Any]] = {
    "mf": {"start": "mean-field", "init_std": 1.0, "max_iter": 60, "lbfgs_history": 20},
    "mf_s1_pos3": {"start": "mean-field", "start_sharpness": 1.0, "position_scale": 3.0,
                   "max_iter": 110, "lbfgs_history": 20},
    "rand_pos3": {"start": "random", "position_scale": 3.0, "max_iter": 110, "lbfgs_history": 20},
    "v1": {"start": "random", "init_std": 1.0, "max_iter": 150, "lbfgs_history": 20},
    "v0": {"start": "random", "init_std": 1.0, "value_init_std": 0.0, "max_iter": 150,
           "lbfgs_history": 20},
}


#: ``--options``: the coupling L2 and the number of heads around the mean-field default (start
#: sharpness 1, ``position_scale`` 3, 32 heads, ``d = 16``, ``lambda_J = 0.01``), traced every 5
#: evaluations on all eight families (``benchmarks/results/factored_sweep_options.json``).
_MF = {"start": "mean-field", "start_sharpness": 1.0, "position_scale": 3.0, "n_heads": 32, "key_dim": 16,
       "lbfgs_history": 20}
OPTION_CONFIGS: dict[str, dict[str, Any]] = {
    "H32": {**_MF, "lambda_j": 0.01, "max_iter": 60},
    "H64": {**_MF, "n_heads": 64, "lambda_j": 0.01, "max_iter": 60},
    "lam003": {**_MF, "lambda_j": 0.003, "max_iter": 60},
    "lam03": {**_MF, "lambda_j": 0.03, "max_iter": 60},
    "lam003_100": {**_MF, "lambda_j": 0.003, "max_iter": 100},
    "lam001_100": {**_MF, "lambda_j": 0.001, "max_iter": 100},
    # the L-BFGS memory at lambda_J = 0.003 (``--options --only hist20 hist60 hist120 --options-out
    # benchmarks/results/factored_sweep_history.json --max-evaluations 90 --tolerance 0.005``)
    "hist20": {**_MF, "lambda_j": 0.003, "max_iter": 110, "lbfgs_history": 20},
    "hist60": {**_MF, "lambda_j": 0.003, "max_iter": 110, "lbfgs_history": 60},
    "hist120": {**_MF, "lambda_j": 0.003, "max_iter": 110, "lbfgs_history": 120},
    # the values' start, at memory 60 (``--options --only val03 val01 --options-out
    # benchmarks/results/factored_sweep_values.json``; hist60 is the same with values of std 1)
    "val03": {**_MF, "lambda_j": 0.003, "max_iter": 100, "lbfgs_history": 60, "value_init_std": 0.3},
    "val01": {**_MF, "lambda_j": 0.003, "max_iter": 100, "lbfgs_history": 60, "value_init_std": 0.1},
    # symmetric couplings, J[i, j] = sum_h (A_h[i, j] V_h + A_h[j, i] V_h^T) / 2, against hist60,
    # two seeds each (``--options --only sym60 hist60_s1 sym60_s1 --options-out
    # benchmarks/results/factored_sweep_symmetric.json --max-evaluations 90``; the file starts
    # with hist60's runs from factored_sweep_history.json)
    "sym60": {**_MF, "lambda_j": 0.003, "max_iter": 100, "lbfgs_history": 60, "symmetric": True},
    "hist60_s1": {**_MF, "lambda_j": 0.003, "max_iter": 100, "lbfgs_history": 60, "seed": 1},
    "sym60_s1": {**_MF, "lambda_j": 0.003, "max_iter": 100, "lbfgs_history": 60, "symmetric": True,
                 "seed": 1},
}
OPTIONS_OUT = Path(__file__).resolve().parent / "results" / "factored_sweep_options.json"


def load(family: str) -> tuple[Any, np.ndarray, int | None]:
    aln, dist = FAMILIES[family]
    msa = read_alignment(DATA / aln)
    table = read_distance_table(DATA / dist)
    full = table.get(None)
    n = int(msa.n_original_columns)
    D = np.full((n, n), np.nan)
    m = min(n, full.shape[0])
    D[:m, :m] = full[:m, :m]
    cols = np.asarray(msa.column_map, dtype=np.int64)
    return msa, D[np.ix_(cols, cols)], msa.alphabet.gap_index


def load_data(name: str) -> tuple[Any, np.ndarray, int | None]:
    """``(prepared data, distances, gap index)`` of a family, or of ``FAMILY:N``: ``N`` of its
    sequences, the rows of ``bench_plm_subsampled.py``'s variant (seed 0), every column kept."""
    from bench_plm_subsampled import variant_rows

    fam, _, n = name.partition(":")
    if fam not in FAMILIES or not (n == "" or n.isdigit()):
        raise SystemExit(f"family must be one of {sorted(FAMILIES)}, optionally :N, got {name!r}")
    msa, D, gap = load(fam)
    states = np.asarray(msa.states)
    if not n or int(n) >= states.shape[0]:
        return prepare_data(msa), D, gap
    return prepare_data(states[variant_rows(states.shape[0], int(n), 0)]), D, gap


def top_l(J: np.ndarray, D: np.ndarray, gap: int | None) -> tuple[float, float]:
    ex = precision_at(contact_scores(J, exclude_state=gap), D, fractions=(1,))["L"]
    inc = precision_at(contact_scores(J, exclude_state=None), D, fractions=(1,))["L"]
    return float(ex), float(inc)


class _Traced(FactoredDCA):
    """FactoredDCA that records the top-L precision every ``trace`` objective evaluations."""

    trace: int = 0
    D: np.ndarray
    gap: int | None
    points: list[tuple[int, float, float, float]]
    trace_seconds: float
    first_call: float

    def _build(self, data: Any, torch_dtype: Any) -> Any:
        model: Any = super()._build(data, torch_dtype)
        if self.trace <= 0:
            return model
        original = model.cross_entropy_sum
        count = [0]
        self.points = []
        self.trace_seconds = 0.0
        self.first_call = 0.0

        def wrapped(tokens: Any, weights: Any) -> Any:
            if count[0] == 0:
                self.first_call = time.perf_counter()
            if count[0] % self.trace == 0:
                t = time.perf_counter()
                J = model.coupling_tensor().detach().double().numpy()
                self.points.append((count[0], *top_l(J, self.D, self.gap),
                                    t - self.first_call - self.trace_seconds))
                self.trace_seconds += time.perf_counter() - t
            count[0] += 1
            return original(tokens, weights)

        model.cross_entropy_sum = wrapped
        return model


def run_factored(name: str, family: str, data: Any, D: np.ndarray, gap: int | None,
                 options: dict[str, Any], trace: int) -> dict[str, Any]:
    opts = dict(options)
    if name in CONFIGS and name != "default":
        opts.setdefault("start", "random")
    if name != "default":  # a configuration that does not name symmetric couplings fits the paper's
        opts.setdefault("symmetric", False)
        opts.setdefault("collapse", "duplicates")  # and every distinct sequence (before merging)
    scale = float(opts.pop("lambda_scale", 1.0))
    if scale != 1.0 or "lambda_j" in opts:
        lj = float(opts.pop("lambda_j", 0.01)) * scale
        opts["regularization"] = Regularization("evcouplings", lj, 0.01)
    est = _Traced(**opts)
    est.trace, est.D, est.gap = trace, D, gap
    t0 = time.perf_counter()
    est.fit(data)
    wall = time.perf_counter() - t0
    setup = 0.0
    if trace > 0:
        setup = est.first_call - t0
        wall -= est.trace_seconds
    ex, inc = top_l(est.couplings_, D, gap)
    row = {
        "config": name, "family": family, "model": "factored",
        "options": {k: (v if not isinstance(v, Regularization) else v.__dict__) for k, v in opts.items()}
        | {"lambda_scale": scale},
        "resolved": {"n_heads": est.n_heads, "key_dim": est.key_dim, "init_std": est.init_std,
                     "factor_l2": est.factor_l2, "max_iter": est.max_iter,
                     "lbfgs_history": est.lbfgs_history, "start": est.start_, "symmetric": est.symmetric,
                     "lambda_j": est.regularization.lambda_j},
        "top_L_gap_excluded": ex, "top_L_gap_included": inc, "wall_seconds": wall,
        "iterations": est.convergence_.iterations, "stop_reason": est.convergence_.stop_reason,
        "n_fitted": est.n_fitted_, "collapse": est.collapse,
        "final_gradient_norm": est.convergence_.final_gradient_norm,
    }
    if trace > 0:
        row["trace"] = [{"evaluation": e, "gap_excluded": a, "gap_included": b, "seconds": setup + sec}
                        for e, a, b, sec in est.points]
        row["evaluations"] = est.convergence_.evaluations
    return row


def run_plm(family: str, data: Any, D: np.ndarray, gap: int | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    est = PlmDCA().fit(data)
    wall = time.perf_counter() - t0
    ex, inc = top_l(est.couplings_, D, gap)
    return {"config": "plm", "family": family, "model": "plm", "options": {},
            "top_L_gap_excluded": ex, "top_L_gap_included": inc, "wall_seconds": wall,
            "iterations": est.convergence_.iterations, "stop_reason": est.convergence_.stop_reason}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced run: defaults and plm on PF00014")
    ap.add_argument("--heldout", action="store_true", help="defaults and plm on held-out families")
    ap.add_argument("--families", nargs="*", default=None)
    ap.add_argument("--only", nargs="*", default=None, help="configuration names to run")
    ap.add_argument("--plm", action="store_true", help="also fit plm")
    ap.add_argument("--trace", type=int, default=0, help="record precision every N evaluations")
    ap.add_argument("--extra", default=None, help="JSON {name: options} of extra configurations")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT,
                    help="JSON the runs are merged into (default benchmarks/results/factored_sweep.json)")
    ap.add_argument("--lofo", action="store_true", help="leave-one-family-out over all families")
    ap.add_argument("--analyse", action="store_true", help="only analyse the saved --lofo runs")
    ap.add_argument("--lofo-out", type=Path, default=LOFO_OUT, help="JSON of the --lofo runs")
    ap.add_argument("--merge", type=Path, nargs="*", default=[],
                    help="more --lofo JSON files whose runs join the analysis (parallel runs)")
    ap.add_argument("--no-plm", action="store_true", help="--lofo without the plm fits")
    ap.add_argument("--options", action="store_true",
                    help="OPTION_CONFIGS on all families, traced every 5 evaluations, then their "
                    "leave-one-family-out selection (--only: some of them; --analyse-options: "
                    "only the selection of the saved runs)")
    ap.add_argument("--analyse-options", action="store_true",
                    help="with --options: only the selection of the saved runs")
    ap.add_argument("--options-out", type=Path, default=OPTIONS_OUT, help="JSON of the --options runs")
    ap.add_argument("--max-evaluations", type=int, default=None,
                    help="with --options: candidates of at most this many evaluations (the time goal)")
    ap.add_argument("--tolerance", type=float, default=0.0,
                    help="with --options: the smallest L-BFGS memory within this much of the best mean")
    args = ap.parse_args(argv)
    if args.max_evaluations is not None and args.max_evaluations < 5:
        ap.error(f"--max-evaluations must be >= 5 (the first traced budget), got {args.max_evaluations}")
    if not args.tolerance >= 0:
        ap.error(f"--tolerance must be >= 0, got {args.tolerance}")
    if not DATA.is_dir() and not (args.analyse or args.analyse_options):
        ap.error(f"no protein families folder {DATA}; set ATTNPOTTS_PROTEINS")
    if not args.no_write:  # refuse a result file this script did not write before fitting anything
        _saved_runs(args.lofo_out if args.lofo else args.options_out if args.options else args.out)
    if args.lofo or args.analyse:
        return lofo(args)
    if args.options:
        return options_sweep(args)

    configs = dict(CONFIGS)
    if args.extra:
        configs.update(json.loads(args.extra))
    if args.quick:
        families, names, plm = ["PF00014"], ["default"], True
    elif args.heldout:
        families, names, plm = list(HELDOUT), ["default"], True
    else:
        families, names, plm = list(SELECTION), list(configs), args.plm
    if args.families:
        families = args.families
    if args.only:
        names = args.only
    unknown = [n for n in names if n not in configs]
    if unknown:
        ap.error(f"unknown configuration(s) {unknown}; known: {sorted(configs)}")

    rows: list[dict[str, Any]] = []
    for fam in families:
        msa, D, gap = load(fam)
        data = prepare_data(msa)
        print(f"# {fam}: L={msa.n_sites} N={msa.n_sequences} N_eff={data.n_eff:.0f}", flush=True)
        if plm:
            rows.append(run_plm(fam, data, D, gap))
            _print(rows[-1])
        for name in names:
            rows.append(run_factored(name, fam, data, D, gap, configs[name], args.trace))
            _print(rows[-1])
    if not args.no_write:
        out: Path = args.out
        old = _saved_runs(out)
        key = {(r["family"], r["config"], json.dumps(r["options"], sort_keys=True)) for r in rows}
        kept = [r for r in old if (r["family"], r["config"], json.dumps(r["options"], sort_keys=True)) not in key]
        atomic_write_json(out, {"description": __doc__, "environment": environment_info(),
                                "runs": kept + rows})
        print(f"wrote {out}")
    return 0


def lofo(args: argparse.Namespace) -> int:
    """Run (unless ``--analyse``) and analyse the leave-one-family-out selection."""
    families = args.families or list(FAMILIES)
    names = args.only or list(LOFO_CONFIGS)
    trace = args.trace or 10
    out: Path = args.lofo_out
    runs = _saved_runs(out)
    if not args.analyse:
        for fam in families:
            msa, D, gap = load(fam)
            data = prepare_data(msa)
            print(f"# {fam}: L={msa.n_sites} N={msa.n_sequences} N_eff={data.n_eff:.0f}", flush=True)
            new = [] if args.no_plm else [run_plm(fam, data, D, gap)]
            if new:
                _print(new[-1])
            for name in names:
                new.append(run_factored(name, fam, data, D, gap, LOFO_CONFIGS[name], trace))
                _print(new[-1])
            done = {(r["family"], r["config"]) for r in new}
            runs = [r for r in runs if (r["family"], r["config"]) not in done] + new
            if not args.no_write:  # after every family, so a stopped run keeps what it did
                atomic_write_json(out, {"description": __doc__, "environment": environment_info(),
                                             "configs": LOFO_CONFIGS, "runs": runs})
    for extra in args.merge:
        have = {(r["family"], r["config"]) for r in runs}
        runs += [r for r in json.loads(extra.read_text()).get("runs", [])
                 if (r["family"], r["config"]) not in have]
    analysis = _lofo_select(runs)
    if analysis and not args.no_write:
        atomic_write_json(out, {"description": __doc__, "environment": environment_info(),
                                     "configs": LOFO_CONFIGS, "runs": runs, "analysis": analysis})
    return 0


def _saved_file(path: Path) -> dict[str, Any]:
    """A result file of this script (empty when it does not exist yet).

    A file that is not one (not JSON, or no ``runs`` list) is refused: the script rewrites the
    file it merges into, and must not replace a file it did not write.
    """
    if not path.exists():
        return {}
    try:
        saved = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        saved = None
    if not (isinstance(saved, dict) and isinstance(saved.get("runs"), list)):
        raise SystemExit(f"{path} is not a result file of this script (JSON with a 'runs' list); "
                         "choose another --out / --lofo-out / --options-out, or move that file away")
    return saved


def _saved_runs(path: Path) -> list[dict[str, Any]]:
    """The runs saved in a result file of this script (see :func:`_saved_file`)."""
    return list(_saved_file(path).get("runs", []))


def options_sweep(args: argparse.Namespace) -> int:
    """Fit :data:`OPTION_CONFIGS` on every family (traced), then select by leave-one-family-out."""
    families = args.families or list(FAMILIES)
    names = args.only or list(OPTION_CONFIGS)
    out: Path = args.options_out
    saved = _saved_file(out)
    runs = list(saved.get("runs", []))
    # what else the file holds (notes on how its runs were made, screening runs) is kept
    kept = {k: v for k, v in saved.items() if k not in ("description", "environment", "configs", "runs", "analysis")}
    environment = saved.get("environment") if args.analyse_options else None
    if not args.analyse_options:
        for fam in families:
            data, D, gap = load_data(fam)
            for name in names:
                row = run_factored(name, fam, data, D, gap, OPTION_CONFIGS[name], args.trace or 5)
                _print(row)
                runs = [r for r in runs if (r["family"], r["config"]) != (fam, name)] + [row]
                if not args.no_write:  # after every fit, so a stopped run keeps what it did
                    atomic_write_json(out, {"description": __doc__, "environment": environment_info(),
                                            "configs": OPTION_CONFIGS, "runs": runs, **kept})
    analysis = _options_select(runs, args.max_evaluations, args.tolerance)
    if analysis and not args.no_write:  # the fits' environment, when only the selection is redone
        atomic_write_json(out, {"description": __doc__, "environment": environment or environment_info(),
                                "configs": OPTION_CONFIGS, "runs": runs, "analysis": analysis, **kept})
    return 0


def _options_select(runs: list[dict[str, Any]], max_evaluations: int | None = None,
                    tolerance: float = 0.0) -> dict[str, Any]:
    """Candidates (config, evaluations traced or the fit's end); per held-out family the best mean
    top-L precision on the others (ties: fewer evaluations). ``max_evaluations``: only candidates
    within that many objective evaluations (a fit's end counts when every fit of it is).
    ``tolerance``: among the candidates within that much of the best mean, those of the smallest
    L-BFGS memory (cheaper in memory and time), then the best mean (the evaluation budget is
    ``max_evaluations``' business)."""
    cap = math.inf if max_evaluations is None else int(max_evaluations)
    memory = {r["config"]: int(r.get("resolved", {}).get("lbfgs_history", 0)) for r in runs}
    fams = sorted({r["family"] for r in runs})
    cand: dict[tuple[str, int], dict[str, float]] = {}
    for r in runs:
        for p in r.get("trace", []):
            if 5 <= p["evaluation"] <= cap:
                cand.setdefault((r["config"], int(p["evaluation"])), {})[r["family"]] = p["gap_excluded"]
    ends: dict[str, dict[str, float]] = {}  # the end of each fit (max_iter iterations)
    for r in runs:
        if r.get("evaluations", 0) <= cap:
            ends.setdefault(r["config"], {})[r["family"]] = r["top_L_gap_excluded"]
    cand = {k: v for k, v in cand.items() if set(v) == set(fams)}
    for c, v in ends.items():
        if set(v) == set(fams):
            cand[(c, -1)] = v  # -1: the end of the fit
    if not cand:
        return {}

    def best(on: list[str]) -> tuple[str, int]:
        means = {k: float(np.mean([cand[k][f] for f in on])) for k in cand}
        top = max(means.values())
        near = [k for k in cand if means[k] >= top - tolerance - 1e-12]
        if tolerance > 0:
            return min(near, key=lambda k: (memory.get(k[0], 0), -means[k], k[1] if k[1] >= 0 else 10**6))
        return max(near, key=lambda k: (means[k], -k[1] if k[1] >= 0 else -10**6))

    rows = []
    print("\nleave-one-family-out over (configuration, evaluations; -1 = the end of the fit)")
    for f in fams:
        k = best([g for g in fams if g != f])
        rows.append({"held_out": f, "config": k[0], "evaluations": k[1], "top_L": cand[k][f]})
        print(f"{f:13s} chosen {k[0]}@{k[1]}  P@L {cand[k][f]:.3f}")
    k_all = best(fams)
    mean_f = float(np.mean([r["top_L"] for r in rows]))
    print(f"mean held-out P@L {mean_f:.3f}; chosen on all families: {k_all[0]}@{k_all[1]} "
          f"({float(np.mean([cand[k_all][f] for f in fams])):.3f})")
    per_config = {c: float(np.mean(list(v.values()))) for c, v in ends.items() if set(v) == set(fams)}
    print("mean P@L at the end of each fit:", {c: round(m, 3) for c, m in per_config.items()})
    return {"held_out": rows, "mean_held_out_top_L": mean_f,
            "chosen_on_all": {"config": k_all[0], "evaluations": k_all[1]},
            "mean_at_end": per_config, "max_evaluations": max_evaluations, "tolerance": tolerance,
            "mean_by_candidate": {f"{c}@{e}": float(np.mean(list(v.values()))) for (c, e), v in sorted(cand.items())}}


def _lofo_select(runs: list[dict[str, Any]], max_time_ratio: float = 2.0) -> dict[str, Any]:
    """Candidates (config, evaluations); per held-out family the best on the others within the time goal."""
    plm = {r["family"]: r for r in runs if r["config"] == "plm"}
    fact = [r for r in runs if r["config"] != "plm" and r.get("trace") and r["family"] in plm]
    fams = sorted({r["family"] for r in fact})
    cand: dict[tuple[str, int], dict[str, tuple[float, float]]] = {}
    for r in fact:
        for p in r["trace"]:
            ratio = p["seconds"] / plm[r["family"]]["wall_seconds"]
            cand.setdefault((r["config"], p["evaluation"]), {})[r["family"]] = (p["gap_excluded"], ratio)
    cand = {k: v for k, v in cand.items() if set(v) == set(fams)}
    if not cand:
        return {}

    def best(on: list[str]) -> tuple[str, int]:
        ok = [k for k, v in cand.items() if max(v[f][1] for f in on) <= max_time_ratio] or list(cand)
        return max(ok, key=lambda k: (float(np.mean([cand[k][f][0] for f in on])), -k[1]))

    rows = []
    print(f"\nleave-one-family-out (time <= {max_time_ratio}x plm on the training families)")
    for f in fams:
        k = best([g for g in fams if g != f])
        p, ratio = cand[k][f]
        rows.append({"held_out": f, "config": k[0], "evaluations": k[1], "top_L": p,
                     "time_ratio_vs_plm": ratio, "plm_top_L": plm[f]["top_L_gap_excluded"]})
        print(f"{f:13s} chosen {k[0]}@{k[1]:4d} evals  P@L {p:.3f}  plm {plm[f]['top_L_gap_excluded']:.3f}"
              f"  time {ratio:.2f}x plm")
    k_all = best(fams)
    mean_f = float(np.mean([r["top_L"] for r in rows]))
    mean_p = float(np.mean([r["plm_top_L"] for r in rows]))
    print(f"mean held-out P@L {mean_f:.3f} (plm {mean_p:.3f}); chosen on all families: {k_all[0]}@{k_all[1]}")
    return {"held_out": rows, "mean_held_out_top_L": mean_f, "mean_plm_top_L": mean_p,
            "chosen_on_all": {"config": k_all[0], "evaluations": k_all[1]},
            "max_time_ratio": max_time_ratio}


def _print(r: dict[str, Any]) -> None:
    tr = ""
    if r.get("trace"):
        tr = " trace " + " ".join(f"{p['evaluation']}:{p['gap_excluded']:.3f}" for p in r["trace"])
    print(f"{r['family']:13s} {r['config']:22s} excl {r['top_L_gap_excluded']:.3f} "
          f"incl {r['top_L_gap_included']:.3f} {r['wall_seconds']:6.1f}s it {r['iterations']} "
          f"{r['stop_reason']}{tr}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
