"""plm on small-N, long alignments: subsampled families against CCMpred and plmc, and a profile.

Usage:
    python benchmarks/bench_plm_subsampled.py tools [--variants PF13354:700 PF00072:1300 ...]
        [--tools plm factored ccmpred plmc] [--plm-options ...] [--out NAME]
    python benchmarks/bench_plm_subsampled.py profile [--variants PF13354:700] [--threads 2]

Variants: ``FAMILY:N`` is ``N`` sequences of the family's alignment drawn without replacement
with ``numpy.random.default_rng(seed)`` (``--seed``, default 0; the same seed gives the same
subset), every column kept, written as FASTA into a temporary folder and scored against the
family's distances (same columns). They are the small-N / long cases on which a fixed
per-evaluation cost (``L^2 q^2``) weighs most against the data term (``N L^2 q``), and they have
contacts, so they also test precision where ``N_eff`` is small.

``tools``: every tool on each variant as a fresh process, one after the other (interleaved per
variant; ``benchmarks/bench_dca.py``'s ``run_alignment``: the same commands, plmc with
``-le 0.01 (L-1)(q-1) -lh 0.01 -m 100``, CCMpred with its defaults, the same scoring;
``--baseline DIR`` adds the plm command run from ``DIR/src``, before the others). The
default variants are close to two slow cases seen on other families (L = 256, N = 706 and
L = 145, N = 1,303): ``PF13354:700`` (L = 202) and ``PF00072:1300`` (L = 119), plus
``PF00595:500`` and ``PF00200:1000``. Writes
``benchmarks/results/bench_plm_subsampled.json`` (or ``--out``) atomically after every variant.

``profile``: one default :class:`attnpotts.dca.PlmDCA` fit per variant under :mod:`cProfile`;
the process CPU time split into the data kernel (numba's fused pass), expanding the stored
couplings and reducing the per-thread gradients, L-BFGS's vector algebra (torch dot/add/mul),
the penalty and the rest, per evaluation. Prints a table and writes
``benchmarks/results/bench_plm_profile.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_dca import (  # noqa: E402
    CCMPRED,
    DATA,
    FAMILIES,
    PLMC,
    RESULTS,
    _check_out,
    _env,
    _load,
    _save,
    print_tools,
    run_alignment,
    summarise,
    use_threads,
    warn_single_threaded_peers,
)

_TOOLS = ("plm-baseline", "plm", "factored", "plmc", "ccmpred")
DEFAULT_VARIANTS = ("PF13354:700", "PF00072:1300", "PF00595:500", "PF00200:1000")


def parse_variant(text: str) -> tuple[str, int]:
    """``"FAMILY:N"`` -> ``(family, N)`` (``N`` = 0: every sequence)."""
    fam, _, n = text.partition(":")
    if fam not in FAMILIES or not (n == "" or n.isdigit()):
        raise argparse.ArgumentTypeError(
            f"variant must be FAMILY:N with FAMILY one of {sorted(FAMILIES)}, got {text!r}")
    return fam, int(n or 0)


def variant_rows(total: int, n: int, seed: int) -> np.ndarray:
    """The rows of a ``FAMILY:N`` variant: ``n`` of ``total`` drawn without replacement by
    ``numpy.random.default_rng(seed)``, sorted (all when ``n`` is 0 or at least ``total``)."""
    if n <= 0 or n >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))


def write_variant(family: str, n: int, seed: int, data: Path, folder: Path) -> tuple[str, Path, Path]:
    """Subsample ``n`` sequences (all when ``n`` is 0 or too large) into a FASTA in ``folder``.

    Returns ``(name, alignment, distances)``, ``name`` = ``FAMILY-N``.
    """
    from attnpotts.alignment import read_alignment

    aln_rel, dist_rel = FAMILIES[family]
    msa = read_alignment(data / aln_rel)
    states = np.asarray(msa.states)
    total = states.shape[0]
    keep = variant_rows(total, n, seed)
    letters = np.array(list(msa.alphabet.symbols))
    name = f"{family}-{keep.size}"
    path = folder / f"{name}.fasta"
    path.write_text("".join(f">s{k}\n{''.join(letters[states[k]])}\n" for k in keep))
    return name, path, data / dist_rel


def cmd_tools(args: argparse.Namespace) -> int:
    record: dict[str, Any] = {"load_avg_start": _load(), "threads": args.threads, "argv": sys.argv[1:],
                              "seed": args.seed, "plm_options": args.plm_options}
    warn_single_threaded_peers(args, record)
    rows: list[dict[str, Any]] = []
    record["tools"] = rows
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for fam, n in args.variants:
            name, aln, dist = write_variant(fam, n, args.seed, args.data, tmp)
            print(f"{name}:", flush=True)
            if args.baseline is not None:  # the same command from other sources, first
                base = argparse.Namespace(**{**vars(args), "src": args.baseline / "src"})
                for r in run_alignment(name, aln, dist, ["plm"], tmp, base):
                    rows.append({**r, "tool": "plm-baseline", "src": str(base.src)})
            rows += run_alignment(name, aln, dist, args.tools, tmp, args)
            record["summary"] = summarise(rows, _TOOLS)
            _save(record, args.out)
            print_tools([r for r in rows if r["family"] == name])
    print_tools(rows)
    print("\nsummary:", json.dumps(record.get("summary", {}), indent=1))
    record["load_avg_end"] = _load()
    print(f"\nload average {record['load_avg_start']:.1f} -> {record['load_avg_end']:.1f}; "
          f"wrote {_save(record, args.out)}")
    return 0


#: Profile categories: substrings of cProfile's function labels.
_CATEGORIES = {
    "data kernel (fused pass)": ("_fused_pl_kernel", "_fused_pl_blocked"),
    "expand J / reduce gradients": ("_expand_pairs", "_reduce_pairs"),
    "L-BFGS vector algebra": ("torch.dot", "method 'add_'", "'torch.add'", "'torch.neg'", "'torch.mul'",
                              "'torch.sub'", "method 'mul_'", "vector_norm", "'torch.abs'",
                              "method 'copy_'", "method 'zero_'"),
    "autograd backward (penalty, .grad)": ("run_backward",),
}


def cmd_profile(args: argparse.Namespace) -> int:
    from attnpotts.alignment import read_alignment
    from attnpotts.dca import PlmDCA
    from attnpotts.storage import atomic_write_json

    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        for fam, n in args.variants:
            name, aln, _ = write_variant(fam, n, args.seed, args.data, Path(tmpdir))
            msa = read_alignment(aln)
            PlmDCA(max_iter=1, tolerance=None).fit(msa)  # compile / warm up
            prof = cProfile.Profile(time.process_time)  # CPU time of all threads: robust to load
            c0, t0 = time.process_time(), time.perf_counter()
            prof.enable()
            est = PlmDCA().fit(msa)
            prof.disable()
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            stats = pstats.Stats(prof)
            per_fn: dict[str, float] = {}
            for (file, line, fn), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
                label = f"{file}:{line}({fn})"
                per_fn[label] = per_fn.get(label, 0.0) + tottime
            total = sum(per_fn.values())
            cats = {c: sum(t for k, t in per_fn.items() if any(s in k for s in subs))
                    for c, subs in _CATEGORIES.items()}
            cats["other"] = total - sum(cats.values())
            conv = est.convergence_
            ev = conv.evaluations
            row = {"variant": name, "L": est.n_sites_, "n_unique": int(est.n_unique_),
                   "n_eff": float(est.n_eff_), "iterations": conv.iterations, "evaluations": ev,
                   "cpu_s": cpu, "wall_s": wall, "profiled_s": total,
                   "categories_s": cats, "per_evaluation_s": {c: t / ev for c, t in cats.items()},
                   "top": sorted(per_fn.items(), key=lambda kv: -kv[1])[:40], "load_avg": _load()}
            out.append(row)
            print(f"\n{name}: L {row['L']}, {conv.iterations} it, {ev} ev, cpu {cpu:.1f} s, wall {wall:.1f} s")
            for c, t in cats.items():
                print(f"  {c:38} {t:7.2f} s  {t / ev * 1e3:8.1f} ms/ev  {t / total:6.1%}")
            for k, t in row["top"][:8]:
                print(f"    {t:7.2f} s  {k[-90:]}")
    path = RESULTS / args.out
    atomic_write_json(path, {"threads": args.threads, "seed": args.seed, "profiles": out})
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for cmd in ("tools", "profile"):
        p = sub.add_parser(cmd)
        p.add_argument("--variants", nargs="+", type=parse_variant,
                       default=[parse_variant(v) for v in DEFAULT_VARIANTS])
        p.add_argument("--data", type=Path, default=DATA, help="protein families folder (ATTNPOTTS_PROTEINS)")
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--seed", type=int, default=0, help="seed of the subsampling")
    t = sub.choices["tools"]  # type: ignore[attr-defined]
    t.add_argument("--tools", nargs="+", default=["plm", "ccmpred", "plmc"],
                   choices=["plm", "factored", "ccmpred", "plmc"])
    t.add_argument("--plmc", type=Path, default=PLMC, help="plmc binary (ATTNPOTTS_PLMC)")
    t.add_argument("--ccmpred", type=Path, default=CCMPRED, help="CCMpred binary (ATTNPOTTS_CCMPRED)")
    t.add_argument("--plm-options", nargs=argparse.REMAINDER, default=[],
                   help="extra attnpotts contacts arguments (last on the line)")
    t.add_argument("--out", default="bench_plm_subsampled.json", help="file name in benchmarks/results/")
    t.add_argument("--baseline", type=Path, default=None,
                   help="a tree (e.g. `git archive REV src | tar -x -C DIR`) whose src/ runs as "
                   "'plm-baseline' before the tools, per variant")
    sub.choices["profile"].add_argument(  # type: ignore[attr-defined]
        "--out", default="bench_plm_profile.json", help="file name in benchmarks/results/")
    args = ap.parse_args(argv)
    args.factored_timeout = None
    if not args.data.is_dir():
        ap.error(f"no protein families folder {args.data}; pass --data or set ATTNPOTTS_PROTEINS")
    if args.cmd == "tools":
        _check_out(ap, args.out, "tools", ("argv", "plm_options"))
    else:
        _check_out(ap, args.out, "profiles", ("threads", "seed"))
    use_threads(ap, args.threads)
    _ = _env  # the tools' environment is bench_dca's (threads capped)
    return cmd_tools(args) if args.cmd == "tools" else cmd_profile(args)


if __name__ == "__main__":
    sys.exit(main())
