"""How many L-BFGS iterations a factored-attention fit gets: a rule in N_eff, chosen by
leave-one-family-out within twice plm's fit time.

Why: the factored fit's top-L precision keeps rising with more iterations on deep alignments
and stays flat on shallow ones, while plm's convergence rule stops sooner on shallow ones; a
fixed count is too short for the first and above twice plm's time on the second. So the default
budget grows with the data: ``E0 + s log2(N_eff / 1000)`` objective evaluations, within 30..150
(``attnpotts.dca.factored_iterations``, in iterations: about 4 fewer).

``fit``: per alignment (the eight families and six of them subsampled, ``FAMILY:N`` as
``bench_plm_subsampled.py`` draws them), the default plm fit (timed) and then the default
factored fit traced to 150 iterations (top-L precision, gap left out, every 5 evaluations, with
the seconds at each point without the tracing; ``sweep_factored.py``'s traced estimator), one
fit at a time in one process. Rows are saved after every alignment.

``select`` (also run after ``fit``): every rule ``(E0, s)`` of the grid gives each alignment a
budget (rounded to the trace's 5 evaluations); its precision there is the mean of the traced
points at the budget and 5 evaluations either side (one fit's precision moves by a contact or two
from one point to the next), its time the traced seconds over plm's fit. For each held-out family
(held out with its subsampled alignment) the rules whose time is at most ``--limit`` (2) times
plm's on every other alignment are kept; of those, within 0.005 of the best mean precision on
the others, the one with the fewest evaluations in all. Reported: the held-out precision and
time, the rule chosen on all fourteen, the fixed 90 evaluations of the previous default, and
the ceiling no rule can pass (``ceiling``: per alignment, the precision at the largest traced
budget within ``--limit``, and the best one among those budgets).

By default ``fit`` traces the paper's form with seeds 0 and 1 (``--configs budget150
budget150_s1``; a fit's precision moves by a contact or two with the seed); ``select`` averages a
form's seeds per alignment, in precision and time. ``--configs budget150_sym`` traces the
symmetric couplings; ``select`` then chooses the form with the rule (candidates
``(form, E0, s, alpha)``; ties go to fewer evaluations, then the paper's form).
``--configs merged220 merged220_s1`` traces fits on the groups of neighbours
(``collapse="neighbours"``) to 220 iterations; their rules also take an exponent ``alpha`` of
the shrink factor (distinct sequences per fitted row): ``(E0 + s log2(N_eff / 1000)) shrink^alpha``
evaluations. Every other configuration fits every distinct sequence.

Usage:
    python benchmarks/select_factored_budget.py fit [--alignments PF00014 PF00200:1000 ...]
    python benchmarks/select_factored_budget.py select [--limit 2.0]
    python benchmarks/select_factored_budget.py fit --configs budget150_sym \
        --out benchmarks/results/factored_budget_symmetric.json   # (begun as a copy of the
                                                                  # seed-0 fits' file)
    python benchmarks/select_factored_budget.py fit --configs merged220 merged220_s1 \
        --out benchmarks/results/factored_budget_merged.json      # then budget150 budget150_s1
                                                                  # into the same file

Writes ``benchmarks/results/factored_budget.json`` (``--out``) atomically.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attnpotts.storage import atomic_write_json, environment_info
from sweep_factored import DATA, FAMILIES, _saved_file, load_data, run_factored, run_plm

OUT = Path(__file__).resolve().parent / "results" / "factored_budget.json"
#: the six small alignments of the plm defaults' selection (``select_dca_defaults.py``)
VARIANTS = ("PF00200:1000", "PF00595:500", "PF00035:700", "PF00550_1T8K:500", "PF00072_1MVO:1300",
            "PF13354:700")
#: the traced fits: the paper's couplings and the symmetric ones (``--symmetric``)
_EXACT = {"symmetric": False, "collapse": "duplicates"}
_MERGED = {"symmetric": False, "collapse": "neighbours"}
CONFIGS: dict[str, dict[str, Any]] = {"budget150": {"max_iter": 150, **_EXACT},
                                      "budget150_s1": {"max_iter": 150, **_EXACT, "seed": 1},
                                      "budget150_sym": {"max_iter": 150, "symmetric": True,
                                                        "collapse": "duplicates"},
                                      "merged220": {"max_iter": 220, **_MERGED},
                                      "merged220_s1": {"max_iter": 220, **_MERGED, "seed": 1}}
E0_GRID = tuple(range(30, 205, 5))
SLOPE_GRID = tuple(range(0, 55, 5))
LOW = 30
TOLERANCE = 0.005


def budget(rule: tuple[Any, ...], n_eff: float, high: int = 150, shrink: float = 1.0) -> int:
    """Evaluations a rule ``(E0, s[, alpha])`` gives an alignment of ``n_eff`` whose fitted rows
    are ``1 / shrink`` of its distinct sequences: ``(E0 + s log2(n_eff / 1000)) shrink^alpha``,
    on the trace's 5-evaluation grid, at most ``high`` (the traced length of the form)."""
    e0, slope = rule[0], rule[1]
    alpha = float(rule[2]) if len(rule) > 2 else 0.0
    e = (e0 + slope * math.log2(n_eff / 1000.0)) * shrink**alpha
    return int(min(high, max(LOW, 5 * round(e / 5))))


def shrink_of(row: dict[str, Any]) -> float:
    """Distinct sequences over the rows the fit saw (1 without merged neighbours)."""
    return float(row["n_unique"]) / float(row.get("n_fitted") or row["n_unique"])


def at(row: dict[str, Any], evaluations: int) -> tuple[float, float]:
    """(precision around ``evaluations``, fit time there / plm's fit time) of one alignment."""
    trace = {p["evaluation"]: p for p in row["trace"]}
    e = min(evaluations, max(trace))
    near = [k for k in (e - 5, e, e + 5) if k in trace]
    precision = float(np.mean([trace[k]["gap_excluded"] for k in near]))
    return precision, trace[e]["seconds"] / row["plm"]["wall_seconds"]


#: the forms of the couplings and the configurations (seeds) that trace each
PAPER_FORM = "budget150"
FORMS: dict[str, tuple[str, ...]] = {PAPER_FORM: ("budget150", "budget150_s1"),
                                     "budget150_sym": ("budget150_sym",),
                                     "merged220": ("merged220", "merged220_s1")}
#: the evaluations each form's fits were traced to (a rule's budget is capped there)
HIGH: dict[str, int] = {PAPER_FORM: 150, "budget150_sym": 150, "merged220": 220}
Candidate = tuple[Any, ...]  # (form, E0, s, alpha)
#: exponents of the shrink factor a form's rules may take (merged fits: spend what they save)
ALPHAS: dict[str, tuple[float, ...]] = {PAPER_FORM: (0.0,), "budget150_sym": (0.0,),
                                        "merged220": (0.0, 0.5, 1.0)}


def evaluate(cand: Candidate, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A candidate on the alignments of ``rows``: per alignment, its form's fits (the seeds
    there) averaged, in precision and in time."""
    seeds: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["config"] in FORMS[cand[0]]:
            seeds.setdefault(str(r["family"]), []).append(r)
    mine = [fits[0] for fits in seeds.values()]
    high = HIGH[cand[0]]
    pts = [np.mean([at(r, budget(cand[1:], r["n_eff"], high, shrink_of(r))) for r in fits], axis=0)
           for fits in seeds.values()]
    return {"mean": float(np.mean([p for p, _ in pts])), "max_time": float(max(t for _, t in pts)),
            "evaluations": sum(budget(cand[1:], r["n_eff"], high, shrink_of(r)) for r in mine),
            "alignments": mine,
            "precision": [float(p) for p, _ in pts], "time": [float(t) for _, t in pts],
            "seeds": [len(fits) for fits in seeds.values()]}


def candidates(rows: list[dict[str, Any]]) -> list[Candidate]:
    """Every rule of the grid, for each form fitted on all the alignments of ``rows``."""
    names = {str(r["family"]) for r in rows}
    forms = [f for f, configs in FORMS.items()
             if {str(r["family"]) for r in rows if r["config"] in configs} == names]
    return [(f, e0, s, a) for f in forms for e0 in E0_GRID for s in SLOPE_GRID for a in ALPHAS[f]]


def choose(rows: list[dict[str, Any]], limit: float) -> Candidate:
    scored = [(evaluate(c, rows), c) for c in candidates(rows)]
    feasible = [(ev, c) for ev, c in scored if ev["max_time"] <= limit]
    if not feasible:
        raise SystemExit(f"no rule keeps every alignment within {limit}x plm's time")
    best = max(ev["mean"] for ev, _ in feasible)
    # ties: fewer evaluations, then the paper's couplings (cheaper per evaluation)
    return min((ev["evaluations"], c[0] != PAPER_FORM, c) for ev, c in feasible
               if ev["mean"] >= best - TOLERANCE)[2]


def ceiling(rows: list[dict[str, Any]], limit: float, form: str = PAPER_FORM) -> dict[str, Any]:
    """What no rule can beat: per alignment, the form's precision (seeds averaged, as
    :func:`evaluate`) at the largest budget within ``limit`` times plm's time there (``largest``)
    and the best over those budgets (``best``: an oracle, optimistic by the trace's noise)."""
    seeds: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["config"] in FORMS[form]:
            seeds.setdefault(str(r["family"]), []).append(r)
    per: dict[str, Any] = {}
    for name, fits in seeds.items():
        grid = sorted(set.intersection(*({int(p["evaluation"]) for p in r["trace"]} for r in fits)))
        pts = [(e, *np.mean([at(r, e) for r in fits], axis=0)) for e in grid if e > 0]
        ok = [(e, float(p), float(t)) for e, p, t in pts if t <= limit] or [min(pts, key=lambda x: x[2])]
        per[name] = {"largest": {"evaluations": ok[-1][0], "top_L": ok[-1][1], "time_ratio_vs_plm": ok[-1][2]},
                     "best": dict(zip(("evaluations", "top_L", "time_ratio_vs_plm"),
                                      max(ok, key=lambda x: x[1]), strict=True)),
                     "plm_top_L": float(fits[0]["plm"]["top_L_gap_excluded"]),
                     "plm_default_score_top_L": float(fits[0]["plm"]["top_L_gap_included"])}
    out: dict[str, Any] = {"form": form, "limit": limit, "alignments": per}
    for group, keep in (("families", lambda k: ":" not in k), ("small", lambda k: ":" in k)):
        names = [k for k in per if keep(k)]
        if names:
            out[group] = {key: float(np.mean([per[k][key]["top_L"] for k in names])) for key in ("largest", "best")}
            for key in ("plm", "plm_default_score"):
                out[group][key] = float(np.mean([per[k][f"{key}_top_L"] for k in names]))
            print(f"ceiling within {limit}x plm's time, {group}: P@L {out[group]['largest']:.3f} at the largest "
                  f"budget, {out[group]['best']:.3f} at the best (plm {out[group]['plm']:.3f} with the same score, "
                  f"{out[group]['plm_default_score']:.3f} with its own)")
    return out


def family(row: dict[str, Any]) -> str:
    return str(row["family"]).split(":")[0]


def select(rows: list[dict[str, Any]], limit: float) -> dict[str, Any]:
    folds = []
    for fam in sorted({family(r) for r in rows}):
        train = [r for r in rows if family(r) != fam]
        test = [r for r in rows if family(r) == fam]
        rule = choose(train, limit)
        ev = evaluate(rule, test)
        for r, p, t, n in zip(ev["alignments"], ev["precision"], ev["time"], ev["seeds"], strict=True):
            folds.append({"held_out": r["family"], "rule": rule,
                          "evaluations": budget(rule[1:], r["n_eff"], HIGH[rule[0]], shrink_of(r)),
                          "top_L": p, "time_ratio_vs_plm": t, "seeds": n})
            print(f"{r['family']:18s} N_eff {r['n_eff']:7.0f}  {rule}  {folds[-1]['evaluations']:3d} evals"
                  f"  P@L {p:.3f}  time {t:.2f}x plm")
    out: dict[str, Any] = {"limit": limit, "folds": folds,
                           "held_out_mean_top_L": float(np.mean([f["top_L"] for f in folds])),
                           "held_out_max_time_ratio": max(f["time_ratio_vs_plm"] for f in folds)}
    print(f"held out: mean P@L {out['held_out_mean_top_L']:.3f}, "
          f"time at most {out['held_out_max_time_ratio']:.2f}x plm")
    best_of = {f"best_{f}": choose([r for r in rows if r["config"] in configs], limit)
               for f, configs in FORMS.items() if any(r["config"] in configs for r in rows)}
    for name, rule in (("chosen_on_all", choose(rows, limit)), ("fixed_90", (PAPER_FORM, 90, 0, 0.0)),
                       *best_of.items()):
        ev = evaluate(rule, rows)
        per = {r["family"]: {"n_eff": r["n_eff"], "shrink": shrink_of(r),
                             "evaluations": budget(rule[1:], r["n_eff"], HIGH[rule[0]], shrink_of(r)),
                             "top_L": p,
                             "time_ratio_vs_plm": t, "seeds": n}
               for r, p, t, n in zip(ev["alignments"], ev["precision"], ev["time"], ev["seeds"], strict=True)}
        whole = [v["top_L"] for k, v in per.items() if ":" not in k]
        small = [v["top_L"] for k, v in per.items() if ":" in k]
        out[name] = {"rule": rule, "mean_top_L": ev["mean"], "families_mean_top_L": float(np.mean(whole)),
                     "small_mean_top_L": float(np.mean(small)), "max_time_ratio": ev["max_time"],
                     "alignments": per}
        print(f"{name}: rule {rule}: mean P@L {ev['mean']:.3f} (eight families {np.mean(whole):.3f}, "
              f"small {np.mean(small):.3f}), time at most {ev['max_time']:.2f}x plm")
    out["ceiling"] = ceiling(rows, limit)
    out["ceilings"] = {f: ceiling(rows, limit, f) for f, configs in FORMS.items()
                       if {str(r["family"]) for r in rows if r["config"] in configs}
                       == {str(r["family"]) for r in rows}}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("fit", "select"))
    ap.add_argument("--alignments", nargs="*", default=None,
                    help="FAMILY or FAMILY:N (default: the eight families and six small alignments)")
    ap.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=["budget150", "budget150_s1"],
                    help="fit: the configurations to trace (default: the paper's couplings, seeds 0 and 1)")
    ap.add_argument("--limit", type=float, default=2.0, help="time limit, times plm's fit (default 2)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if not args.limit > 0:
        ap.error(f"--limit must be > 0, got {args.limit}")
    if args.step == "fit" and not DATA.is_dir():
        ap.error(f"no protein families folder {DATA}; set ATTNPOTTS_PROTEINS")
    saved = _saved_file(args.out)  # refuses a file that is not a result file (never replaced)
    runs: list[dict[str, Any]] = list(saved.get("runs", []))
    environment = saved.get("environment")
    if args.step == "fit":
        environment = environment_info()
        for name in args.alignments or [*VARIANTS, *FAMILIES]:
            data, D, gap = load_data(name)
            plm = run_plm(name, data, D, gap)
            for config in args.configs:
                row = run_factored(config, name, data, D, gap, CONFIGS[config], 5)
                row.update(plm=plm, L=int(data.states.shape[1]), n_unique=int(data.states.shape[0]),
                           n_fitted=int(row["n_fitted"]),
                           n_eff=float(data.n_eff))
                print(f"{name}: plm {plm['wall_seconds']:.1f} s, {config} {row['wall_seconds']:.1f} s",
                      flush=True)
                runs = [r for r in runs if (r["family"], r["config"]) != (name, config)] + [row]
                atomic_write_json(args.out, {"description": __doc__, "environment": environment,
                                             "runs": runs})
    if not runs:
        ap.error(f"no fits in {args.out}; run the fit step first")
    analysis = select(runs, args.limit)
    atomic_write_json(args.out, {"description": __doc__, "environment": environment, "runs": runs,
                                 "analysis": analysis})
    return 0


if __name__ == "__main__":
    sys.exit(main())
