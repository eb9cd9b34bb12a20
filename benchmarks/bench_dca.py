"""DCA benchmark: evaluation speed of the coupling-contraction options, whole-command accuracy and
wall time on PF00014 / PF00595, peak memory at L = 200, and the PyPI peers.

Usage:  python benchmarks/bench_dca.py [--quick] [--skip-factored] [--repeats 3] [--families PF00014 PF00595]

Sections (all measured in the same run, on this machine):

1. ``evaluation``: one objective-and-gradient evaluation of the full Potts model (all positions,
   sequence weights, L2 terms, backward). Rows ``plain`` / ``sparse`` / ``dense-bf16``: model
   logits with that kernel -> ``masked_cross_entropy``. Row ``loop (fused)``: what the training
   loop computes (``all_positions_cross_entropy``, the model's fused pseudo-likelihood pass).
   Baseline: ``plain`` (dense float32 one-hot matrix product); speeds are ratios to it. Wall and
   CPU seconds (median of repeats).
2. ``startup``: seconds to ``import torch`` and to construct ``torch.optim.LBFGS`` (which imports
   ``torch._dynamo``) or attnpotts' own L-BFGS, each in fresh processes.
   ``runs``: ``attnpotts contacts`` as a subprocess (process start, imports, reading, weights,
   fit, scores, all output files), per family and model (default plm runs: median of
   ``--repeats``), with the precision of the top L/k pairs (8 A, |i - j| >= 6, the family's
   ``distances.tsv``) and the convergence report.
3. ``memory``: peak resident memory (``ru_maxrss`` of the child) of a plm fit at L = 200 (random
   alignment of 5000 sequences, 5 iterations) next to the library's estimate.
4. ``peers``: plmc / CCMpred reference numbers measured earlier on this machine type (not re-run
   here), and the PyPI peers run side by side on the same alignments in
   their own environments: pydca's plmDCA and EVcouplings' mean-field DCA (``PEERS``).

The machine is shared: the load average at the start and end is recorded, and wall times are only
comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: Protein families (FAMILY/FILE layout, docs/data.md): $ATTNPOTTS_PROTEINS, default data/proteins.
DATA = Path(os.environ.get("ATTNPOTTS_PROTEINS", ROOT / "data" / "proteins"))
RESULTS = ROOT / "benchmarks" / "results"
FAMILIES = {
    "PF00014": ("PF00014/PF00014_mgap6.fasta.gz", "PF00014/PF00014.distances.tsv"),
    "PF00595": ("PF00595/PF00595_mgap6.fasta.gz", "PF00595/PF00595.distances.tsv"),
}
#: Reference numbers measured earlier on this machine type (plmc: 80% reweighting, lambda_J = 0.01 (q-1)(L-1),
#: lambda_h = 0.01, 100 iterations; CCMpred CPU build, OpenMP, 2 threads).
PEERS_FROM_ISSUE = {
    "PF00014": {"plmc_precision_L": 0.981, "plmc_wall_s": 29.4, "ccmpred_wall_s": 12.3,
                "ccmpred_precision_L": 0.925},
    "PF00595": {"plmc_precision_L": 0.939, "ccmpred_wall_s": 54.6, "ccmpred_precision_L": 0.927},
}


def _load() -> float:
    return os.getloadavg()[0]


def _save(record: dict[str, Any]) -> Path:
    """Write the record so far, atomically (the benchmark is long; partial results count, a
    killed run leaves the previous complete file)."""
    from attnpotts.storage import atomic_write_json

    RESULTS.mkdir(parents=True, exist_ok=True)
    return atomic_write_json(RESULTS / os.environ.get("BENCH_DCA_OUT", "bench_dca.json"), record)


# ------------------------------------------------------------------------------ 1. evaluation
def bench_evaluation(family: str, repeats: int) -> list[dict[str, Any]]:
    import torch

    from attnpotts.alignment import read_alignment
    from attnpotts.dca.fit import _initial_fields, prepare_data
    from attnpotts.inference.objectives import (
        all_positions_cross_entropy,
        coupling_penalty,
        field_penalty,
        masked_cross_entropy,
    )
    from attnpotts.models import FullPotts

    msa = read_alignment(DATA / FAMILIES[family][0])
    data = prepare_data(msa)
    U, L = data.states.shape
    q = data.n_states
    tokens = torch.as_tensor(data.states.astype(np.int64))
    w = torch.as_tensor(data.weights, dtype=torch.float32)
    h0 = torch.as_tensor(_initial_fields(data), dtype=torch.float32)
    rows: list[dict[str, Any]] = []
    for name in ("plain", "sparse", "dense-bf16", "loop (fused)"):
        model: Any = FullPotts(L, q, symmetric=True, init_std=0.01, seed=1)
        model.kernel = {"plain": "dense", "loop (fused)": "auto"}.get(name, name)
        with torch.no_grad():
            model.fields.copy_(h0)

        def evaluate(model: Any = model, fused: bool = name == "loop (fused)") -> float:
            model.zero_grad(set_to_none=True)
            if fused:  # what the training loop computes: the objectives' all-positions hook
                loss = all_positions_cross_entropy(model, tokens, w) / (w.sum() * L)
            else:
                loss = masked_cross_entropy(model.logits(tokens), tokens, None, w, reduction="mean")
            loss = loss + 5e-4 * coupling_penalty(model) + 5e-4 * field_penalty(model)
            loss.backward()
            return float(loss.detach())

        value = evaluate()  # warm-up (numba compilation is cached on disk)
        walls, cpus = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            evaluate()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        rows.append({"family": family, "kernel": name, "n_unique": U, "L": L,
                     "wall_s": float(np.median(walls)), "cpu_s": float(np.median(cpus)),
                     "objective": value})
    # the contraction alone (forward + backward with a fixed upstream gradient): the share of an
    # evaluation that the kernel owns; the rest is the generic objective's passes over (U, L, q)
    from attnpotts.models.kernels import coupling_logits

    J = torch.zeros(L, L, q, q).normal_(0, 0.01, generator=torch.Generator().manual_seed(2))
    Wk = J.permute(0, 2, 1, 3).contiguous().requires_grad_(True)
    up = torch.randn(U, L, q, generator=torch.Generator().manual_seed(3))
    for name in ("sparse", "dense-bf16"):
        walls, cpus = [], []
        for k in range(repeats + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            Wk.grad = None
            (coupling_logits(Wk, tokens, bias=h0, method=name) * up).sum().backward()  # type: ignore[arg-type]
            if k:
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
        rows.append({"family": family, "kernel": f"{name} (contraction only)", "n_unique": U, "L": L,
                     "wall_s": float(np.median(walls)), "cpu_s": float(np.median(cpus)),
                     "objective": rows[0]["objective"]})
    base = rows[0]
    for r in rows:
        r["speedup_wall"] = base["wall_s"] / r["wall_s"]
        r["speedup_cpu"] = base["cpu_s"] / r["cpu_s"]
        r["objective_rel_diff"] = abs(r["objective"] - base["objective"]) / abs(base["objective"])
    return rows


# ------------------------------------------------------------------------------ 2. runs
def run_cli(family: str, model: str, extra: list[str], tmp: Path, repeats: int = 1) -> dict[str, Any]:
    """``attnpotts contacts`` as a fresh process, ``repeats`` times; wall and CPU are medians."""
    aln, dist = FAMILIES[family]
    out = tmp / f"{family}-{model}-{'_'.join(extra) or 'default'}"
    cmd = [sys.executable, "-m", "attnpotts.cli.main", "contacts", str(DATA / aln), "--out", str(out),
           "--distances", str(DATA / dist), "--model", model, "--overwrite", *extra]
    walls, cpus, loads = [], [], []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))
        loads.append(_load())
        if proc.returncode != 0:
            break
    wall = float(np.median(walls))
    row: dict[str, Any] = {"family": family, "model": model, "options": " ".join(extra) or "default",
                           "command_wall_s": wall, "command_wall_runs_s": walls,
                           "command_cpu_s": float(np.median(cpus)),
                           "returncode": proc.returncode, "load_avg": max(loads)}
    if proc.returncode != 0:
        row["error"] = proc.stderr[-2000:]
        return row
    s = json.loads((out / "summary.json").read_text())
    row.update(
        precision=s["precision"], precision_by_score=s.get("precision_by_score"), n_eff=s["n_eff"], n_unique=s["n_unique"], L=s["n_sites"],
        iterations=s["convergence"]["iterations"], stop_reason=s["convergence"]["stop_reason"],
        evaluations=s["convergence"].get("evaluations"),
        gradient_norm=s["convergence"]["final_gradient_norm"],
        fit_wall_s=s["convergence"]["wall_seconds"], summary_wall_s=s["wall_seconds"],
    )
    peer = PEERS_FROM_ISSUE.get(family, {})
    if "plmc_precision_L" in peer:
        # plmc's own score keeps the gap state in the Frobenius norm: compare like with like
        row["precision_L_minus_plmc"] = s["precision_by_score"]["gap_included"]["L"] - peer["plmc_precision_L"]
    if "ccmpred_wall_s" in peer:
        row["wall_over_ccmpred"] = wall / peer["ccmpred_wall_s"]
    return row


# ------------------------------------------------------------------------------ 2b. start-up
_STARTUP_CHILD = {
    "import torch": "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t)",
    "torch.optim.LBFGS(...)": (
        "import torch, time; p = [torch.zeros(3, requires_grad=True)]; t = time.perf_counter(); "
        "torch.optim.LBFGS(p, line_search_fn='strong_wolfe'); print(time.perf_counter() - t)"
    ),
    "attnpotts LBFGS(...)": (
        "import torch, time; from attnpotts.training.lbfgs import LBFGS; "
        "p = [torch.zeros(3, requires_grad=True)]; t = time.perf_counter(); "
        "LBFGS(p); print(time.perf_counter() - t)"
    ),
}


def bench_startup(repeats: int) -> list[dict[str, Any]]:
    """Seconds to import torch, and to construct each L-BFGS (modules already imported), in fresh
    processes (median).

    Constructing any ``torch.optim.Optimizer`` imports ``torch._dynamo``; the training loop's own
    L-BFGS does not, which is why it exists (see ``attnpotts.training.lbfgs``).
    """
    rows = []
    for name, code in _STARTUP_CHILD.items():
        times = []
        for _ in range(repeats):
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            times.append(float(proc.stdout.strip().splitlines()[-1]))
        rows.append({"what": name, "seconds": float(np.median(times)), "runs": times})
    return rows


# ------------------------------------------------------------------------------ 3. memory
_MEMORY_CHILD = r"""
import json, resource, sys, numpy as np
from attnpotts.dca import PlmDCA
L, N, m = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
states = rng.integers(0, 21, (N, L))
# a high limit so that the real peak can be measured next to the estimate
est = PlmDCA(max_iter=5, lbfgs_history=m, memory_limit_gb=64).fit(states, np.ones(N))
print(json.dumps({"estimate_gib": est.memory_estimate_.total_gib,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
                  "parts": est.memory_estimate_.parts}))
"""


def bench_memory(L: int, N: int, history: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(L), str(N), str(history)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"L": L, "N": N, "lbfgs_history": history, "error": proc.stderr[-2000:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update(L=L, N=N, lbfgs_history=history, target_gib=2.0)
    return out


# ------------------------------------------------------------------------------ 4. peers
PEER_PYTHON = Path(os.environ.get("ATTNPOTTS_PEER_PYTHON", "/tmp/peers_venv/bin/python"))
PYDCA_PYTHON = Path(os.environ.get("ATTNPOTTS_PYDCA_PYTHON", "/tmp/pydca_venv/bin/python"))
#: PyPI peers run side by side: (environment's python, script in benchmarks/, description).
PEERS = {
    "evcouplings mean-field": (PEER_PYTHON, "peer_evcouplings_meanfield.py",
                               "evcouplings 0.2 mean-field DCA (theta 0.8, pseudocount 0.5, CN score)"),
    "pydca plmDCA": (PYDCA_PYTHON, "peer_pydca_plmdca.py",
                     "pydca 1.23 plmDCA (C++ backend, 2 OpenMP threads; 80% reweighting, "
                     "lambda_h = lambda_J = 0.2 (L-1), 100 iterations; FN without gap + APC)"),
}


def run_peer(name: str, family: str, tmp: Path) -> dict[str, Any]:
    """A PyPI peer (installed in its own environment) on the same alignment; precision as ours."""
    from attnpotts.alignment import read_distances
    from attnpotts.evaluation import precision_at

    python, script, tool = PEERS[name]
    aln, dist = FAMILIES[family]
    if not python.exists():
        return {"family": family, "tool": name, "error": f"no {python} (see {script} for the install)"}
    out = tmp / f"{family}-{script}.npy"
    t0 = time.perf_counter()
    proc = subprocess.run([str(python), str(ROOT / "benchmarks" / script), str(DATA / aln), str(out)],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"family": family, "tool": name, "error": proc.stderr[-1500:]}
    S = np.load(out)
    D = read_distances(DATA / dist, n_sites=S.shape[0])
    return {"family": family, "tool": tool, "command_wall_s": wall, "precision": precision_at(S, D),
            "load_avg": _load()}


def peers_status() -> dict[str, str]:
    """How the PyPI peers were installed (their environments live outside this project)."""
    return {
        "pydca": "`pip install pydca` fails on Python 3.11: it pins numpy <= 1.15.4, which does not "
                 "build there. Installed with --no-deps --no-build-isolation next to current numpy, "
                 "scipy, numba, biopython (commands in benchmarks/peer_pydca_plmdca.py); its plmDCA "
                 "(C++ backend) runs; its sequence back-mapper (Bio.SubsMat, removed from Biopython) "
                 "is not used.",
        "evcouplings": "`pip install evcouplings` works; its plmc-based couplings need the plmc binary "
                       "(not on PyPI), so its pure-Python mean-field DCA is run.",
    }


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES))
    ap.add_argument("--quick", action="store_true", help="fewer repeats; PF00014 only")
    ap.add_argument("--skip-factored", action="store_true")
    ap.add_argument("--factored-families", nargs="*", default=["PF00014"],
                    help="families for the (slower) factored attention runs")
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of each default plm command (the median is reported)")
    ap.add_argument("--iterations", nargs="*", type=int, default=[],
                    help="extra plm runs with these --max-iter values")
    ap.add_argument("--iteration-families", nargs="*", default=["PF00014"],
                    help="families for the --iterations runs")
    args = ap.parse_args(argv)
    families = ["PF00014"] if args.quick else args.families
    record: dict[str, Any] = {"load_avg_start": _load(), "cpu_count": os.cpu_count(),
                              "argv": sys.argv[1:]}
    if not args.skip_eval:
        record["evaluation"] = []
        for fam in families:
            record["evaluation"] += bench_evaluation(fam, 2 if args.quick else 3)
            _save(record)
        print(f"\n{'family':8} {'kernel':30} {'wall s':>8} {'cpu s':>8} {'x wall':>7} {'x cpu':>7} {'rel obj':>9}")
        for r in record["evaluation"]:
            print(f"{r['family']:8} {r['kernel']:30} {r['wall_s']:8.3f} {r['cpu_s']:8.3f} "
                  f"{r['speedup_wall']:7.2f} {r['speedup_cpu']:7.2f} {r['objective_rel_diff']:9.1e}")
    record["startup"] = bench_startup(3)
    for r in record["startup"]:
        print(f"start-up: {r['what']:24} {r['seconds']:6.3f} s (median of {len(r['runs'])} processes)")
    _save(record)
    runs: list[dict[str, Any]] = []
    record["runs"] = runs
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for fam in families:
            runs.append(run_cli(fam, "plm", [], tmp, repeats=1 if args.quick else args.repeats))
            _save(record)
        for fam in families:
            if fam in args.iteration_families:
                for it in args.iterations:
                    runs.append(run_cli(fam, "plm", ["--max-iter", str(it)], tmp))
                    _save(record)
        for fam in families:
            if not args.skip_factored and fam in args.factored_families:
                runs.append(run_cli(fam, "factored", [], tmp))
                _save(record)
    print(f"\n{'family':8} {'model':9} {'options':14} {'wall s':>7} {'/ccmpred':>8} {'P@L':>6} {'P@L/2':>6} "
          f"{'P@L/5':>6} {'P@L gi':>6} {'gi-plmc':>7} {'iter':>5} {'stop':>18} {'load':>5}")
    print("(P@L..: default score, gap excluded; P@L gi: gap included, plmc's score)")
    for r in runs:
        if "error" in r:
            print(f"{r['family']:8} {r['model']:9} {r['options']:14} FAILED: {r['error'][-300:]}")
            continue
        p = r["precision"]
        print(f"{r['family']:8} {r['model']:9} {r['options']:14} {r['command_wall_s']:7.1f} "
              f"{r.get('wall_over_ccmpred', float('nan')):8.2f} {p['L']:6.3f} {p['L/2']:6.3f} {p['L/5']:6.3f} "
              f"{r['precision_by_score']['gap_included']['L']:6.3f} "
              f"{r.get('precision_L_minus_plmc', float('nan')):+7.3f} {r['iterations']:5d} {r['stop_reason']:>18} "
              f"{r['load_avg']:5.1f}")
    if not args.skip_memory:
        record["memory"] = [bench_memory(200, 5000, h) for h in (5, 3)]
        for m in record["memory"]:
            if "error" in m:
                print(f"\nmemory at L=200 (lbfgs_history {m['lbfgs_history']}): FAILED/REFUSED "
                      f"{m['error'][-400:]}")
            else:
                print(f"\nmemory at L=200, N=5000, lbfgs_history {m['lbfgs_history']}: peak RSS "
                      f"{m['peak_rss_gib']:.2f} GiB, estimate {m['estimate_gib']:.2f} GiB, target < 2 GiB")
    _save(record)
    record["peers_from_issue"] = PEERS_FROM_ISSUE
    if not args.skip_peers:
        with tempfile.TemporaryDirectory() as tmpdir:
            record["peer_runs"] = []
            for f in families:
                for name in PEERS:
                    record["peer_runs"].append(run_peer(name, f, Path(tmpdir)))
                    _save(record)
        for r in record["peer_runs"]:
            if "error" in r:
                print(f"{r['family']} {r['tool']} FAILED: {r['error'][-300:]}")
            else:
                p = r["precision"]
                print(f"{r['family']} {r['tool']}: {r['command_wall_s']:.1f} s, P@L {p['L']:.3f}, "
                      f"P@L/2 {p['L/2']:.3f}, P@L/5 {p['L/5']:.3f}")
    record["pypi_peers"] = peers_status()
    record["load_avg_end"] = _load()
    path = _save(record)
    print(f"\nload average {record['load_avg_start']:.1f} -> {record['load_avg_end']:.1f}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
