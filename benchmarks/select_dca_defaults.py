"""Choose the plm defaults (iterations or a stopping rule, coupling L2, score) by leave-one-family-out.

Usage:
    python benchmarks/select_dca_defaults.py fit [--families ...] [--lambdas 0.01 0.02] [--max-iter 100]
    python benchmarks/select_dca_defaults.py select [--baseline benchmarks/results/bench_dca.json]
        [--lambdas 0.01 0.03] [--out dca_defaults_selection_lambdas.json]

``fit``: for every family and coupling L2 ``lambda_J`` (EVcouplings convention, ``lambda_J (L-1)
(q-1)``; ``lambda_h = 0.01``), ONE plm fit of ``--max-iter`` L-BFGS iterations (the library's fit:
80 % identity weights, float32, fields started at plmc's, couplings at zero), stopped every
``--every`` iterations to record the objective, the gradient norm and the precision of every
score (below). L-BFGS keeps its curvature history across the stops, so the state after ``k``
iterations is that of a fit with ``max_iter = k`` (each stop costs one extra evaluation, which
is not counted). Results go to ``benchmarks/results/dca_defaults_fits.json`` (or ``--out``;
merged with the fits already there, so lambdas can be added in later runs, also in parallel
processes writing different files).

Scores (all zero-sum gauge, then ranked by the benchmark's rule: top ``L`` pairs with
``|i - j| >= 6`` and a known distance, contact < 8 A):
``fn_apc_nogap`` (Frobenius norm without the gap state, APC; CCMpred), ``fn_apc_gap`` (with the gap
state, APC; plmc), ``fn_nogap`` (no APC).

Stopping settings evaluated from the same fits: a fixed number of iterations ``k`` (every stop),
or "stop at the first stop where the objective fell by less than ``eps`` (relative) over the last
``--every`` iterations" for a few ``eps`` (capped at ``--max-iter``).

Variants (``fit --variants FAMILY:N``, fits named ``FAMILY-N``): the family subsampled to ``N``
sequences (``benchmarks/bench_plm_subsampled.py``), small-N cases with the family's contacts.
``select`` holds a family out together with its variants (they share contacts and sequences).

``select``: leave-one-family-out. For each held-out family the setting (stopping, lambda,
score) is chosen on the other seven by ``--criterion``: ``plmc`` (default; the goal, at least
plmc's precision on every family) takes the settings within ``--tolerance`` (0.005) of the best
worst-case ``P@L - plmc``, then those within it of the best mean P@L, then the cheapest (fewest
iterations, then the larger lambda); ``mean`` takes the best mean P@L, then the cheapest. The
setting's precision on the held-out family is reported next to plmc's (``--baseline``:
``bench_dca.py`` / ``bench_plm_subsampled.py`` results with plmc rows). The final default is
the same rule on all of them. When several files hold a fit of the same family and lambda, the
one run furthest is used. Writes ``benchmarks/results/dca_defaults_selection.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_dca import DATA, FAMILIES, RESULTS, _check_out  # noqa: E402
from bench_plm_subsampled import parse_variant  # noqa: E402

FITS = RESULTS / "dca_defaults_fits.json"
SELECTION = RESULTS / "dca_defaults_selection.json"
SCORES = ("fn_apc_nogap", "fn_apc_gap", "fn_nogap", "fn_raw_apc_gap", "fn_raw_apc_nogap")
TOLERANCES = (1e-2, 5e-3, 3e-3, 2e-3, 1e-3, 5e-4, 3e-4, 1e-4)
#: Windows (iterations) over which the relative objective decrease is compared with a tolerance.
WINDOWS = (5, 10)


def _scores(J: np.ndarray, gap: int | None) -> dict[str, np.ndarray]:
    from attnpotts.evaluation import contact_scores

    return {
        "fn_apc_nogap": contact_scores(J, exclude_state=gap),
        "fn_apc_gap": contact_scores(J, exclude_state=None),
        "fn_nogap": contact_scores(J, exclude_state=gap, use_apc=False),
        "fn_raw_apc_gap": contact_scores(J, exclude_state=None, gauge="none"),
        "fn_raw_apc_nogap": contact_scores(J, exclude_state=gap, gauge="none"),
    }


def fit_family(family: str, lambda_j: float, max_iter: int, every: int, data_dir: Path,
               n_sequences: int = 0, seed: int = 0) -> dict[str, Any]:
    """One plm fit with stops every ``every`` iterations; precision of every score at each stop.

    ``n_sequences`` > 0: the family's variant of that many sequences drawn with ``seed``
    (``bench_plm_subsampled.write_variant``), recorded as ``FAMILY-N``.
    """
    import torch

    from attnpotts.alignment import read_alignment, read_distances
    from attnpotts.dca import Regularization
    from attnpotts.dca.fit import _initial_fields, prepare_data
    from attnpotts.evaluation import precision_at
    from attnpotts.models import FullPotts
    from attnpotts.training import Callback, TrainingConfig, train

    aln, dist = FAMILIES[family]
    if n_sequences > 0:
        from bench_plm_subsampled import write_variant

        with tempfile.TemporaryDirectory() as tmp:
            family, path, _ = write_variant(family, n_sequences, seed, data_dir, Path(tmp))
            msa = read_alignment(path)
    else:
        msa = read_alignment(data_dir / aln)
    data = prepare_data(msa)
    U, L = data.states.shape
    q = data.n_states
    D = read_distances(data_dir / dist, n_sites=L)
    cl2, fl2 = Regularization("evcouplings", lambda_j, 0.01).per_token(L, q, data.n_eff)
    model = FullPotts(L, q, symmetric=True, fields=True, init_std=0.0, seed=0)
    with torch.no_grad():
        assert model.fields is not None
        model.fields.copy_(torch.as_tensor(_initial_fields(data), dtype=torch.float32))
    stops: list[dict[str, Any]] = []
    t0 = time.process_time()

    class Record(Callback):
        def on_epoch_end(self, record: dict[str, Any]) -> bool | None:
            with torch.no_grad():
                J = model.coupling_tensor().double().numpy()
            prec = {name: precision_at(S, D, fractions=(1, 5))
                    for name, S in _scores(J, data.gap_index).items()}
            stops.append({"iterations": int(record["steps"]), "objective": float(record["objective"]),
                          "gradient_norm": float(record["gradient_norm"]),
                          "parameter_norm": float(sum(float((p.detach().double() ** 2).sum())
                                                      for p in model.parameters()) ** 0.5),
                          "evaluations": int(record["evaluations"]), "cpu_s": time.process_time() - t0,
                          "precision": prec})
            return None

    config = TrainingConfig(optimizer="lbfgs", learning_rate=1.0, max_epochs=max_iter // every,
                            batch_size=None, masking="all", coupling_l2=cl2, field_l2=fl2,
                            lbfgs_max_iter=every, lbfgs_history=5, eval_batch_size=U, seed=0)
    train(model, data.states, config=config, weights=data.weights, callbacks=[Record()])
    return {"family": family, "lambda_j": lambda_j, "L": L, "n_unique": U, "n_eff": data.n_eff,
            "every": every, "stops": stops}


def cmd_fit(args: argparse.Namespace) -> int:
    from attnpotts.storage import atomic_write_json

    path = RESULTS / args.out
    record = json.loads(path.read_text()) if path.exists() else {"fits": []}
    done = {(f["family"], f["lambda_j"], f["stops"][-1]["iterations"]) for f in record["fits"]}
    units = [(f, 0) for f in args.families] + list(args.variants)
    for lam in args.lambdas:
        for fam, n in units:
            name = fam if n == 0 else f"{fam}-{n}"
            if any(d[0] == name and d[1] == lam and d[2] >= args.max_iter for d in done):
                continue
            t0 = time.perf_counter()
            fit = fit_family(fam, lam, args.max_iter, args.every, args.data, n, args.seed)
            fam = fit["family"]
            fit["wall_s"], fit["load_avg"] = time.perf_counter() - t0, os.getloadavg()[0]
            record["fits"] = [f for f in record["fits"] if not (f["family"] == fam and f["lambda_j"] == lam)]
            record["fits"].append(fit)
            atomic_write_json(path, record)
            best = {s: max(st["precision"][s]["L"] for st in fit["stops"]) for s in SCORES}
            print(f"{fam} lambda_J {lam}: {fit['wall_s']:.0f} s; P@L by stop (fn_apc_nogap): "
                  + " ".join(f"{st['iterations']}:{st['precision']['fn_apc_nogap']['L']:.3f}"
                             for st in fit["stops"]) + f"; best {best}", flush=True)
    return 0


def _settings(fits: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, float]]:
    """``(rule, value, window, lambda, score) -> {family: P@L}`` and the iterations used (``_it``).

    Rules: ``("iterations", k, 0)``, a fixed number of iterations; ``("tolerance", eps, window)``,
    stop at the first multiple of ``window`` iterations where the objective fell by less than
    ``eps`` (relative) over the last ``window`` iterations (else at the fit's last stop).
    """
    table: dict[tuple[Any, ...], dict[str, float]] = {}
    for fit in fits:
        stops, lam, fam, every = fit["stops"], fit["lambda_j"], fit["family"], int(fit["every"])
        chosen: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
            (("iterations", st["iterations"], 0), st) for st in stops]
        for eps, window in itertools.product(TOLERANCES, WINDOWS):
            if window % every:  # a fit stopped every 10 iterations cannot score a 5-iteration window
                continue
            pick = stops[-1]
            for prev, st in zip(stops, stops[window // every:], strict=False):
                if st["iterations"] % window == 0 and (
                        (prev["objective"] - st["objective"]) / abs(st["objective"]) < eps):
                    pick = st
                    break
            chosen.append((("tolerance", eps, window), pick))
        for (rule, value, window), st in chosen:
            for score in SCORES:
                if score not in st["precision"]:
                    continue
                key = (rule, value, window, lam, score)
                table.setdefault(key, {})[fam] = st["precision"][score]["L"]
                table[key][f"_it_{fam}"] = st["iterations"]
    return table


def _choose(table: dict[tuple[Any, ...], dict[str, float]], families: list[str], tolerance: float) -> tuple[Any, ...]:
    """Best mean P@L over ``families``; among those within ``tolerance``, the cheapest."""
    means = {k: float(np.mean([v[f] for f in families])) for k, v in table.items()
             if all(f in v for f in families)}
    best = max(means.values())
    near = [k for k, m in means.items() if m >= best - tolerance]
    cost = {k: float(np.mean([table[k][f"_it_{f}"] for f in families])) for k in near}
    return min(near, key=lambda k: (cost[k], -k[3], -means[k]))


def _choose_vs_plmc(table: dict[tuple[Any, ...], dict[str, float]], families: list[str],
                    plmc: dict[str, float], tolerance: float) -> tuple[Any, ...]:
    """The goal's criterion: among the settings within ``tolerance`` of the best worst-case
    ``P@L - plmc`` over ``families``, :func:`_choose`'s (best mean, then the cheapest)."""
    worst = {k: min(v[f] - plmc[f] for f in families) for k, v in table.items()
             if all(f in v for f in families)}
    top = max(worst.values())
    return _choose({k: table[k] for k, w in worst.items() if w >= top - tolerance}, families, tolerance)


def _longest_fits(paths: list[Path]) -> list[dict[str, Any]]:
    """Every fit of the files, one per (family, lambda): the one run furthest (later files win ties),
    so a 100-iteration fit is not cut short by an older 40-iteration one."""
    best: dict[tuple[str, float], dict[str, Any]] = {}
    for path in paths:
        for fit in json.loads(path.read_text())["fits"]:
            key = (fit["family"], float(fit["lambda_j"]))
            if key not in best or fit["stops"][-1]["iterations"] >= best[key]["stops"][-1]["iterations"]:
                best[key] = fit
    return list(best.values())


def _group(name: str) -> str:
    """The family of a fit: ``PF13354`` for ``PF13354`` and its variant ``PF13354-700``."""
    return name.split("-")[0]


def cmd_select(args: argparse.Namespace) -> int:
    from attnpotts.storage import atomic_write_json

    fits = _longest_fits(sorted(RESULTS.glob(FITS.stem + "*.json")))
    if args.no_variants:
        fits = [f for f in fits if _group(f["family"]) == f["family"]]
    if args.lambdas:
        fits = [f for f in fits if any(abs(f["lambda_j"] - lam) <= 1e-12 for lam in args.lambdas)]
        if not fits:
            raise SystemExit(f"no fits with lambda_J in {args.lambdas} in {RESULTS}/{FITS.stem}*.json")
    table = _settings(fits)
    items = sorted({f["family"] for f in fits})
    complete = [k for k, v in table.items() if all(f in v for f in items)]
    table = {k: table[k] for k in complete}
    plmc: dict[str, float] = {}
    for path in args.baseline:
        if Path(path).exists():
            for r in json.loads(Path(path).read_text()).get("tools", []):
                if r.get("tool") == "plmc" and "precision" in r:
                    plmc[r["family"]] = r["precision"]["L"]
    groups = sorted({_group(f) for f in items})
    if args.criterion == "plmc":
        missing = [f for f in items if f not in plmc]
        if missing:
            raise SystemExit(f"--criterion plmc needs plmc's precision on {missing} (--baseline)")

    def choose(fams: list[str]) -> tuple[Any, ...]:
        if args.criterion == "plmc":
            return _choose_vs_plmc(table, fams, plmc, args.tolerance)
        return _choose(table, fams, args.tolerance)

    folds = []
    print(f"{'held out':13} {'chosen on the other families':44} {'P@L':>6} {'plmc':>6} {'diff':>7}")
    for held in groups:
        train_f = [f for f in items if _group(f) != held]
        k = choose(train_f)
        for item in (f for f in items if _group(f) == held):
            p = table[k][item]
            folds.append({"held_out": item, "family": held, "setting": list(k), "precision_L": p,
                          "iterations": table[k][f"_it_{item}"], "plmc_precision_L": plmc.get(item)})
            d = p - plmc[item] if item in plmc else float("nan")
            print(f"{item:13} {k!s:44} {p:6.3f} {plmc.get(item, float('nan')):6.3f} {d:+7.3f}")
    final = choose(items)
    per_item = {f: table[final][f] for f in items}
    vs_plmc = {f: per_item[f] - plmc[f] for f in items if f in plmc}
    held_vs_plmc = [f["precision_L"] - f["plmc_precision_L"] for f in folds if f["plmc_precision_L"] is not None]
    print(f"\nfinal (all {len(items)}: {len(groups)} families and their variants): {final}; mean P@L "
          f"{np.mean(list(per_item.values())):.3f}; worst vs plmc {min(vs_plmc.values(), default=float('nan')):+.3f}")
    print(f"held out: mean P@L {np.mean([f['precision_L'] for f in folds]):.3f}, worst vs plmc "
          f"{min(held_vs_plmc, default=float('nan')):+.3f}, at or above plmc on "
          f"{sum(d >= 0 for d in held_vs_plmc)} of {len(held_vs_plmc)}")
    ranking = sorted(((float(np.mean([v[f] for f in items])), k) for k, v in table.items()), reverse=True)[:15]
    atomic_write_json(RESULTS / args.out, {
        "families": groups, "items": items, "criterion": args.criterion, "tolerance": args.tolerance,
        "folds": folds,
        "final": {"setting": list(final), "precision_L": per_item,
                  "iterations": {f: table[final][f"_it_{f}"] for f in items},
                  "minus_plmc": vs_plmc},
        "stable_across_folds": sum(list(f["setting"]) == list(final) for f in folds),
        "top_settings_on_all": [{"mean_precision_L": m, "setting": list(k)} for m, k in ranking],
        "held_out_mean_precision_L": float(np.mean([f["precision_L"] for f in folds])),
        "held_out_worst_minus_plmc": float(min(held_vs_plmc)) if held_vs_plmc else None,
        "plmc_precision_L": plmc,
    })
    print(f"wrote {RESULTS / args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    f.add_argument("--variants", nargs="*", default=[], type=parse_variant,
                   help="subsampled families FAMILY:N (benchmarks/bench_plm_subsampled.py)")
    f.add_argument("--seed", type=int, default=0, help="seed of the subsampling")
    f.add_argument("--lambdas", nargs="+", type=float, default=[0.01])
    f.add_argument("--max-iter", type=int, default=100)
    f.add_argument("--every", type=int, default=5)
    f.add_argument("--data", type=Path, default=DATA)
    f.add_argument("--out", default=FITS.name,
                   help="file in benchmarks/results/ (select reads every dca_defaults_fits*.json)")
    s = sub.add_parser("select")
    s.add_argument("--criterion", choices=("plmc", "mean"), default="plmc",
                   help="plmc: the best worst-case P@L - plmc, then the best mean, then the cheapest "
                   "(the goal: at least plmc's precision on every family); mean: the best mean P@L, "
                   "then the cheapest")
    s.add_argument("--tolerance", type=float, default=0.005)
    s.add_argument("--baseline", nargs="+",
                   default=[str(RESULTS / "bench_dca_plmc.json"), str(RESULTS / "bench_plm_subsampled_plmc.json")],
                   help="bench_dca.py / bench_plm_subsampled.py results with plmc rows")
    s.add_argument("--out", default=SELECTION.name, help="file name in benchmarks/results/")
    s.add_argument("--no-variants", action="store_true", help="the whole families only")
    s.add_argument("--lambdas", nargs="+", type=float, default=None,
                   help="only the fits of these lambda_J (default: every one found, as the plm "
                   "default was chosen, --out dca_defaults_selection_lambdas.json; the previous "
                   "default was chosen with --lambdas 0.01 0.03)")
    args = ap.parse_args(argv)
    # --out: a file name in the results folder, and never a file this script did not write
    if args.cmd == "fit":
        _check_out(ap, args.out, "fits", (), folder=RESULTS)
    else:
        _check_out(ap, args.out, "folds", ("items", "final"), folder=RESULTS)
    return cmd_fit(args) if args.cmd == "fit" else cmd_select(args)


if __name__ == "__main__":
    sys.exit(main())
