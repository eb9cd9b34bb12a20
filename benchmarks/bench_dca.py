"""DCA benchmark: attnpotts (plm and factored), plmc and CCMpred side by side on eight protein
families, interleaved per family, plus the per-evaluation cost of the kernels and peak memory.

Usage:  python benchmarks/bench_dca.py [--families PF00014 ...] [--tools plm factored plmc ccmpred]
        [--data DIR] [--plmc BIN] [--ccmpred BIN] [--threads 2] [--skip-eval] [--skip-memory]
        [--skip-tools] [--agreement ITERATIONS]

Sections (all measured in the same run, on this machine):

1. ``tools`` (the main table): for each family in turn, every tool as a fresh process with
   ``--threads`` threads, one after the other (interleaved, so a change of machine load hits all
   tools of a family alike): wall time and CPU time of the process (``os.wait4``), its peak
   resident memory (``VmHWM``, read while it runs: :func:`peak_rss_bytes`), and the precision
   of its top ``L/k`` pairs. Scoring is identical for all tools:
   the tool's own ``L x L`` score matrix (APC-corrected Frobenius norms as each tool writes them),
   pairs ``|i - j| >= 6`` with a known distance ranked by score, contact = distance < 8 A in the
   family's ``distances.tsv`` (first distance column, alignment columns from 1).

   * ``attnpotts plm`` / ``attnpotts factored``: ``attnpotts contacts ALN --model M`` with its
     defaults (``scores.mat``); the wall time is the whole command (start, imports, reading the
     alignment, weights, fit, scores and every output file).
   * ``plmc``: ``plmc -c EC -le 0.01 (L-1)(q-1) -lh 0.01 -m 100 -t 0.2 -n THREADS`` (EVcouplings'
     scaling of plmc's coupling penalty, half of attnpotts' default, its setting in EVcouplings; it equals the
     README's ``-le 16`` at ``L = 81``; ``-t`` is plmc's *divergence* threshold, 0.2 = its
     default = 80 % identity, as attnpotts and CCMpred), score = its EC file (APC-corrected
     Frobenius norm, gap state included).
   * ``ccmpred``: ``ccmpred -t THREADS`` with its defaults (50 iterations, 80 % reweighting,
     ``lambda_pair = 0.2 (L - 1)``, APC), score = its ``.mat``.

   Building the peers threaded (both are C programs; outside this repository): plmc with
   ``make all-openmp``; CCMpred with its CMake build plus the OpenMP flag for its C files, which
   the build itself does not pass (it links the runtime only, and the binary then runs on one
   thread): ``cmake -DWITH_CUDA=OFF -DCMAKE_BUILD_TYPE=Release
   -DCMAKE_C_FLAGS_RELEASE="-fopenmp" .. && make`` (with a recent glibc also ``-include
   math.h`` in those flags, for its ``fsqrt`` macro). The benchmark warns when a peer's binary
   has no OpenMP parallel region (:func:`openmp_regions`), and records it in every row.

   The peers read the same alignment as attnpotts, written as plain FASTA (plmc) and one
   sequence per line (CCMpred) beforehand (not timed). A peer whose binary is absent is skipped
   (``--plmc`` / ``--ccmpred`` or the ``ATTNPOTTS_PLMC`` / ``ATTNPOTTS_CCMPRED`` variables).
   Factored runs stop after ``--factored-timeout`` seconds (recorded as such).
2. ``evaluation``: one objective-and-gradient evaluation of the full Potts model (all positions,
   sequence weights, L2 terms, backward) per kernel; speeds are ratios to the dense float32
   one-hot product measured in the same run.
3. ``memory``: peak resident memory of a plm fit at L = 200 next to the library's estimate.
4. ``agreement`` (only with ``--agreement ITERATIONS``, for each of ``--families``): plmc
   (``-m ITERATIONS``, options as above) and ``PlmDCA(tolerance=None, max_iter=ITERATIONS)`` with
   plmc's penalty (``lambda_J = 0.01``; the default is 0.02), in this process, on the same alignment: the correlation of their APC scores over the pairs
   ``|i - j| >= 6``, the top-L pairs they share and each one's precision. Run to convergence
   (a few hundred iterations) the two solve the same problem, so their scores agree to the
   optimisers' tolerance; at 100 iterations neither has converged.

The machine may be shared: the load average is recorded before every run, and wall times are
only comparable within one run (``--threads`` caps every tool's threads).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
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
#: Peer binaries, built by the user from their public sources: the variable, else the PATH.
PLMC = Path(os.environ.get("ATTNPOTTS_PLMC") or shutil.which("plmc") or "plmc")
CCMPRED = Path(os.environ.get("ATTNPOTTS_CCMPRED") or shutil.which("ccmpred") or "ccmpred")
RESULTS = ROOT / "benchmarks" / "results"
#: family -> (alignment, distances) relative to the data folder.
FAMILIES = {
    "PF00014": ("PF00014/PF00014_mgap6.fasta.gz", "PF00014/PF00014.distances.tsv"),
    "PF00035": ("PF00035/PF00035_full.fasta", "PF00035/PF00035.distances.tsv"),
    "PF00072": ("PF00072_1MVO/PF00072.align.80", "PF00072_1MVO/PF00072_1MVO.distances.tsv"),
    "PF00076": ("PF00076_2X1B/PF00076.align.80", "PF00076_2X1B/PF00076_2X1B.distances.tsv"),
    "PF00200": ("PF00200/PF00200.fasta", "PF00200/PF00200.distances.tsv"),
    "PF00550": ("PF00550_1T8K/PF00550.align.80", "PF00550_1T8K/PF00550_1T8K.distances.tsv"),
    "PF00595": ("PF00595/PF00595_mgap6.fasta.gz", "PF00595/PF00595.distances.tsv"),
    "PF13354": ("PF13354/PF13354_wo_ref_seqs.fasta.gz", "PF13354/PF13354.distances.tsv"),
}
TOOLS = ("plm", "factored", "plmc", "ccmpred")


def _load() -> float:
    return os.getloadavg()[0]


def use_threads(ap: argparse.ArgumentParser, threads: int) -> None:
    """Run this process's torch and numba on ``--threads`` threads through attnpotts' own call,
    which leaves ``NUMBA_NUM_THREADS`` alone once numba has started (changing it then makes
    numba's next compile raise, where its pool size is not the new value), or refuse a count
    numba cannot take."""
    from attnpotts.errors import ValidationError
    from attnpotts.threads import set_threads

    try:
        set_threads(threads)
    except ValidationError as exc:
        ap.error(f"--threads {threads}: {exc}")


def _check_out(ap: argparse.ArgumentParser, name: str, rows: str = "tools",
               keys: tuple[str, ...] = ("argv", "cpu_count"), *, folder: Path | None = None) -> Path:
    """Refuse, before any run, an ``--out`` outside the results folder (``folder``, default
    ``benchmarks/results/``) or naming a file the benchmark did not write (it would be replaced).
    A benchmark's file is JSON with a list under ``rows`` and the ``keys`` only it writes (this
    one's: ``cpu_count``; ``bench_plm_subsampled.py``'s, which share the layout: ``plm_options``).
    Shared by the benchmarks that write there; returns the path."""
    folder = RESULTS if folder is None else folder
    if Path(name).name != name or not name.endswith(".json"):
        ap.error(f"--out must be a file name ending in .json (written to {folder}), got {name!r}")
    path = folder / name
    if not path.exists():
        return path
    try:
        saved = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        saved = None
    if not (isinstance(saved, dict) and isinstance(saved.get(rows), list) and all(k in saved for k in keys)):
        wanted = ", ".join(f"'{k}'" for k in (rows, *keys))
        ap.error(f"{path} is not a result of this benchmark (JSON with {wanted}); "
                 "choose another --out or move that file away")
    return path


def _save(record: dict[str, Any], name: str) -> Path:
    """Write the record so far, atomically (the benchmark is long; partial results count, a
    killed run leaves the previous complete file)."""
    from attnpotts.storage import atomic_write_json

    RESULTS.mkdir(parents=True, exist_ok=True)
    return atomic_write_json(RESULTS / name, record)


# ------------------------------------------------------------------------------ 1. tools
def peak_rss_bytes(pid: int | str = "self") -> int | None:
    """The high-water mark of a process's resident memory since its ``exec`` (``VmHWM`` of
    ``/proc/PID/status``; Linux), or ``None`` where that is not readable.

    Not ``ru_maxrss``: a child started by ``subprocess`` (vfork, then exec) inherits its
    parent's high-water mark there, so after the parent once held 1.8 GiB every child it starts,
    ``/bin/true`` included, reports at least 1.8 GiB.
    """
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def own_peak_rss_bytes() -> int:
    """This process's peak resident memory: :func:`peak_rss_bytes`, or ``ru_maxrss`` (floored by
    the parent's high-water mark) where ``/proc`` is not readable."""
    import resource

    return peak_rss_bytes() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_process(cmd: list[str], env: dict[str, str], timeout: float | None = None) -> dict[str, Any]:
    """Run ``cmd``; wall and CPU seconds (``os.wait4``) and peak RSS (GiB) of that process alone.

    The peak is the largest :func:`peak_rss_bytes` read while it runs (every 20 ms: growth in
    its last 20 ms can be missed); ``ru_maxrss`` (floored by this process's own high-water mark)
    only where ``/proc`` is not readable (``peak_rss_source`` says which).
    """
    load = _load()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    deadline = None if timeout is None else t0 + timeout
    timed_out = False
    peak: int | None = None
    while True:
        hwm = peak_rss_bytes(proc.pid)
        if hwm is not None:
            peak = max(hwm, peak or 0)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.perf_counter() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            timed_out = True
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    assert proc.stdout is not None
    output = proc.stdout.read().decode("utf-8", "replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_gib": (usage.ru_maxrss * 1024 if peak is None else peak) / 1024**3,
            "peak_rss_source": "ru_maxrss" if peak is None else "VmHWM", "returncode": proc.returncode,
            "timed_out": timed_out, "load_avg": load, "output_tail": output[-1500:]}


#: Symbols a binary calls to open an OpenMP parallel region (GCC's libgomp, LLVM's libomp).
_OPENMP_SYMBOLS = (b"GOMP_parallel", b"__kmpc_fork_call")


def openmp_regions(binary: Path) -> bool | None:
    """Whether ``binary`` opens OpenMP parallel regions (``None``: the file cannot be read).

    A peer built without the compiler's OpenMP flag ignores its ``#pragma omp`` lines and runs
    on one thread whatever ``-t``/``-n`` says, though it may still link the OpenMP runtime:
    CCMpred's CMake build does exactly that (it links ``OpenMP::OpenMP_CXX`` to a C program),
    which about halves its speed on 2 cores. The module docstring says how to build it threaded.
    """
    try:
        data = Path(binary).read_bytes()
    except OSError:
        return None
    return any(sym in data for sym in _OPENMP_SYMBOLS)


def check_peer_threads(binary: Path, name: str, threads: int) -> str | None:
    """A warning when ``threads > 1`` but ``binary`` has no OpenMP parallel region, else ``None``."""
    if threads > 1 and openmp_regions(binary) is False:
        return (f"{name} at {binary} has no OpenMP parallel region (built without -fopenmp?): it "
                f"runs on one thread, not {threads}, and its times are not a {threads}-thread "
                "baseline; rebuild it as the module docstring says")
    return None


def warn_single_threaded_peers(args: argparse.Namespace, record: dict[str, Any]) -> None:
    """Print and record (``record["warnings"]``) :func:`check_peer_threads` for the peers in
    ``args.tools`` (``args`` needs ``tools``, ``threads``, ``plmc`` and ``ccmpred``)."""
    for peer, binary in (("plmc", args.plmc), ("ccmpred", args.ccmpred)):
        warning = check_peer_threads(binary, peer, args.threads) if peer in args.tools else None
        if warning:
            print(f"warning: {warning}", flush=True)
            record.setdefault("warnings", []).append(warning)


def _env(threads: int, src: Path | None = None) -> dict[str, str]:
    """The tools' environment: ``threads`` threads everywhere, attnpotts from ``src`` (default
    this tree's ``src/``).

    ``OMP_WAIT_POLICY`` is left out: attnpotts sets its own default (passive) when imported,
    and the peers run with their OpenMP runtime's default. A passive policy put on CCMpred, which
    opens one parallel region per sequence in every evaluation, doubled its time on PF00076
    (16.4 s against 8.1 s).
    """
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(OMP_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    src = ROOT / "src" if src is None else src
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)
    return env


def _sequence_lines(msa: Any) -> list[str]:
    """The alignment's rows as letters, for the peers' input files."""
    letters = np.array(list(msa.alphabet.symbols))
    return ["".join(letters[row]) for row in np.asarray(msa.states)]


def _plmc_command(plmc: Path, ec: Path, fasta: Path, n_sites: int, n_states: int, iterations: int,
                  threads: int) -> list[str]:
    """plmc with attnpotts' default penalty (module docstring), ``iterations`` iterations."""
    le = 0.01 * (n_sites - 1) * (n_states - 1)
    return [str(plmc), "-c", str(ec), "-le", f"{le:g}", "-lh", "0.01", "-m", str(iterations),
            "-t", "0.2", "-n", str(threads), str(fasta)]


def _read_plmc_scores(path: Path, n_sites: int) -> np.ndarray:
    """plmc's EC file ``i a_i j a_j 0 score`` (sites from 1) as a symmetric ``(L, L)`` matrix."""
    S = np.zeros((n_sites, n_sites))
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) >= 6:
            i, j = int(f[0]) - 1, int(f[2]) - 1
            S[i, j] = S[j, i] = float(f[5])
    return S


def score(S: np.ndarray, distances: Path) -> dict[str, float]:
    """Precision of the top L/k pairs, the same for every tool (module docstring)."""
    from attnpotts.alignment import read_distances
    from attnpotts.evaluation import precision_at

    D = read_distances(distances, n_sites=S.shape[0])
    return precision_at(S, D, cutoff=8.0, min_separation=6, fractions=(1, 2, 5, 10))


def run_family(family: str, tools: list[str], tmp: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every tool on one family, one after the other (see the module docstring)."""
    aln_rel, dist_rel = FAMILIES[family]
    return run_alignment(family, args.data / aln_rel, args.data / dist_rel, tools, tmp, args)


def run_alignment(family: str, aln: Path, dist: Path, tools: list[str], tmp: Path,
                  args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every tool on the alignment ``aln`` (scored against ``dist``), one after the other.

    ``args`` needs ``threads``, ``plmc``, ``ccmpred`` and ``factored_timeout``, and may carry
    ``plm_options`` / ``factored_options`` (extra ``attnpotts contacts`` arguments) and ``src``
    (the attnpotts sources to run, default this tree's); ``family`` names the rows (and the
    temporary files).
    """
    from attnpotts.alignment import read_alignment
    from attnpotts.formats import read_score_matrix

    msa = read_alignment(aln)
    L, q = msa.n_sites, msa.q
    lines = _sequence_lines(msa)
    fasta, plain = tmp / f"{family}.fasta", tmp / f"{family}.aln"
    fasta.write_text("".join(f">s{n}\n{s}\n" for n, s in enumerate(lines)))
    plain.write_text("\n".join(lines) + "\n")
    env = _env(args.threads, getattr(args, "src", None))
    rows: list[dict[str, Any]] = []
    for tool in tools:
        row: dict[str, Any] = {"family": family, "tool": tool, "L": L, "N": msa.n_sequences}
        out = tmp / f"{family}-{tool}"
        if tool in ("plm", "factored"):
            cmd = [sys.executable, "-m", "attnpotts", "contacts", str(aln), "--out", str(out),
                   "--model", tool, "--overwrite", *getattr(args, f"{tool}_options", [])]
            timeout = args.factored_timeout if tool == "factored" else None
            row.update(run_process(cmd, env, timeout))
            if row["returncode"] == 0:
                s = json.loads((out / "summary.json").read_text())
                row["convergence"] = s["convergence"]
                row["n_unique"], row["n_eff"] = s["n_unique"], s["n_eff"]
                row["warnings"] = s.get("warnings", [])
                row["precision"] = score(read_score_matrix(out / "scores.mat"), dist)
        elif tool == "plmc":
            if not args.plmc.exists():
                rows.append({**row, "skipped": f"no plmc binary at {args.plmc} (--plmc)"})
                continue
            ec = tmp / f"{family}.plmc.ec"
            cmd = _plmc_command(args.plmc, ec, fasta, L, q, 100, args.threads)
            row.update(run_process(cmd, env), options=" ".join(cmd[1:-1]),
                       openmp_regions=openmp_regions(args.plmc))
            if row["returncode"] == 0:
                row["precision"] = score(_read_plmc_scores(ec, L), dist)
        elif tool == "ccmpred":
            if not args.ccmpred.exists():
                rows.append({**row, "skipped": f"no CCMpred binary at {args.ccmpred} (--ccmpred)"})
                continue
            mat = tmp / f"{family}.ccmpred.mat"
            cmd = [str(args.ccmpred), "-t", str(args.threads), str(plain), str(mat)]
            row.update(run_process(cmd, env), options=" ".join(cmd[1:2]),
                       openmp_regions=openmp_regions(args.ccmpred))
            if row["returncode"] == 0:
                row["precision"] = score(read_score_matrix(mat), dist)
        rows.append(row)
        print(f"  {family} {tool}: {row.get('wall_s', float('nan')):.1f} s, P@L "
              f"{row.get('precision', {}).get('L', float('nan')):.3f}", flush=True)
        if out.exists():
            shutil.rmtree(out, ignore_errors=True)
    return rows


def print_tools(rows: list[dict[str, Any]]) -> None:
    by = {(r["family"], r["tool"]): r for r in rows}
    print(f"\n{'family':8} {'L':>4} {'N':>6} {'tool':9} {'P@L':>6} {'P@L/5':>6} {'wall s':>7} "
          f"{'/ccmpred':>8} {'cpu s':>7} {'GiB':>5} {'load':>5}  note")
    for r in rows:
        if "skipped" in r:
            print(f"{r['family']:8} {r['L']:4d} {r['N']:6d} {r['tool']:9} skipped: {r['skipped']}")
            continue
        cc = by.get((r["family"], "ccmpred"), {})
        ratio = r["wall_s"] / cc["wall_s"] if cc.get("returncode") == 0 else float("nan")
        p = r.get("precision", {})
        note = "TIMED OUT" if r.get("timed_out") else ("" if r["returncode"] == 0 else "FAILED")
        if "convergence" in r:
            c = r["convergence"]
            note += f"{c['iterations']} it, {c['evaluations']} ev, {c['stop_reason']}"
        print(f"{r['family']:8} {r['L']:4d} {r['N']:6d} {r['tool']:9} {p.get('L', float('nan')):6.3f} "
              f"{p.get('L/5', float('nan')):6.3f} {r['wall_s']:7.1f} {ratio:8.2f} {r['cpu_s']:7.1f} "
              f"{r['peak_rss_gib']:5.2f} {r['load_avg']:5.1f}  {note}")


def markdown(rows: list[dict[str, Any]]) -> str:
    """The per-family table as Markdown: ``wall s, P@L / P@L/5`` per tool (the README's table)."""
    fams = list(dict.fromkeys(r["family"] for r in rows))
    tools = [t for t in TOOLS if any(r["tool"] == t for r in rows)]
    by = {(r["family"], r["tool"]): r for r in rows}
    head = "| family (L, N) | " + " | ".join(tools) + " |"
    lines = [head, "|---" * (len(tools) + 1) + "|"]
    for f in fams:
        first = next(r for r in rows if r["family"] == f)
        cells = []
        for t in tools:
            r = by.get((f, t))
            if r is None or "skipped" in r:
                cells.append("-")
            elif r.get("timed_out"):
                cells.append(f"> {r['wall_s']:.0f} s (stopped)")
            elif r.get("returncode") != 0 or "precision" not in r:
                cells.append("failed")
            else:
                p = r["precision"]
                cells.append(f"{r['wall_s']:.1f} s, {p['L']:.3f} / {p['L/5']:.3f}")
        lines.append(f"| {f} ({first['L']}, {first['N']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summarise(rows: list[dict[str, Any]], tools: tuple[str, ...] = TOOLS) -> dict[str, Any]:
    """Per tool: mean P@L, worst P@L difference to plmc, median and max wall (and CPU) / CCMpred."""
    by = {(r["family"], r["tool"]): r for r in rows if r.get("returncode") == 0 and "precision" in r}
    out: dict[str, Any] = {}
    for tool in tools:
        fams = [f for (f, t) in by if t == tool]
        if not fams:
            continue
        s: dict[str, Any] = {"families": len(fams),
                             "mean_precision_L": float(np.mean([by[f, tool]["precision"]["L"] for f in fams])),
                             "total_wall_s": float(sum(by[f, tool]["wall_s"] for f in fams))}
        vs_plmc = [by[f, tool]["precision"]["L"] - by[f, "plmc"]["precision"]["L"] for f in fams if (f, "plmc") in by]
        if vs_plmc:
            s["worst_precision_L_minus_plmc"] = float(min(vs_plmc))
            s["families_at_or_above_plmc"] = int(sum(d >= 0 for d in vs_plmc))
        # time ratios only within one run (rows merged from several files keep their file's name)
        timed = [f for f in fams if (f, "ccmpred") in by
                 and by[f, tool].get("result_file") == by[f, "ccmpred"].get("result_file")]
        ratio = [by[f, tool]["wall_s"] / by[f, "ccmpred"]["wall_s"] for f in timed]
        if ratio:
            s["median_wall_over_ccmpred"] = float(np.median(ratio))
            s["max_wall_over_ccmpred"] = float(max(ratio))
            cpu = [by[f, tool]["cpu_s"] / by[f, "ccmpred"]["cpu_s"] for f in timed]
            s["median_cpu_over_ccmpred"] = float(np.median(cpu))
            s["max_cpu_over_ccmpred"] = float(max(cpu))
        out[tool] = s
    return out


# ------------------------------------------------------------------------------ 2. evaluation
def bench_evaluation(family: str, repeats: int, data: Path = DATA) -> list[dict[str, Any]]:
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

    msa = read_alignment(data / FAMILIES[family][0])
    data = prepare_data(msa)
    U, L = data.states.shape
    q = data.n_states
    tokens = torch.as_tensor(data.states.astype(np.int64))
    w = torch.as_tensor(data.weights, dtype=torch.float32)
    h0 = torch.as_tensor(_initial_fields(data), dtype=torch.float32)
    rows: list[dict[str, Any]] = []
    from attnpotts.models.kernels import fused_pseudo_likelihood

    for name in ("plain", "sparse", "dense-bf16", "fused, full J (before)", "loop (fused)"):
        model: Any = FullPotts(L, q, symmetric=True, init_std=0.01, seed=1)
        model.kernel = {"plain": "dense", "loop (fused)": "auto"}.get(name, name)
        with torch.no_grad():
            model.fields.copy_(h0)

        def evaluate(model: Any = model, name: str = name) -> float:
            model.zero_grad(set_to_none=True)
            if name == "loop (fused)":  # what the training loop computes: the all-positions hook
                loss = all_positions_cross_entropy(model, tokens, w) / (w.sum() * L)
                loss = loss + 5e-4 * coupling_penalty(model)
            elif name.startswith("fused, full J"):
                # the previous loop: the full J (L, L, q, q) formed from the stored triangle for
                # the kernel and again for the penalty, fresh buffers in every evaluation
                J = model.coupling_tensor()
                loss = fused_pseudo_likelihood(J.permute(0, 2, 1, 3), model.fields, tokens, w,
                                               symmetric=True) / (w.sum() * L)
                J2 = model.coupling_tensor()
                loss = loss + 5e-4 * (J2 * J2).sum()
            else:
                loss = masked_cross_entropy(model.logits(tokens), tokens, None, w, reduction="mean")
                loss = loss + 5e-4 * coupling_penalty(model)
            loss = loss + 5e-4 * field_penalty(model)
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


# ------------------------------------------------------------------------------ 3. memory
_MEMORY_CHILD = r"""
import json, sys, numpy as np
from attnpotts.dca import PlmDCA
L, N, m = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, sys.argv[4])
from bench_dca import own_peak_rss_bytes
rng = np.random.default_rng(0)
states = rng.integers(0, 21, (N, L))
# a high limit so that the real peak can be measured next to the estimate
est = PlmDCA(max_iter=5, lbfgs_history=m, memory_limit_gb=64).fit(states, np.ones(N))
print(json.dumps({"estimate_gib": est.memory_estimate_.total_gib,
                  "peak_rss_gib": own_peak_rss_bytes() / 1024**3,
                  "parts": est.memory_estimate_.parts}))
"""


def bench_memory(L: int, N: int, history: int) -> dict[str, Any]:
    here = str(Path(__file__).resolve().parent)
    proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(L), str(N), str(history), here],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"L": L, "N": N, "lbfgs_history": history, "error": proc.stderr[-2000:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update(L=L, N=N, lbfgs_history=history, target_gib=2.0)
    return out


def bench_agreement(family: str, iterations: int, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """plmc and attnpotts' plm, each run for ``iterations``, on one family (section 4)."""
    from attnpotts.alignment import read_alignment
    from attnpotts.dca import PlmDCA, Regularization, prepare_data

    aln_rel, dist_rel = FAMILIES[family]
    msa = read_alignment(args.data / aln_rel)
    L, q = msa.n_sites, msa.q
    fasta, ec = tmp / f"{family}.agreement.fasta", tmp / f"{family}.agreement.ec"
    fasta.write_text("".join(f">s{n}\n{s}\n" for n, s in enumerate(_sequence_lines(msa))))
    plmc = run_process(_plmc_command(args.plmc, ec, fasta, L, q, iterations, args.threads),
                       _env(args.threads))
    if plmc["returncode"] != 0:
        return {"family": family, "iterations": iterations, "error": "plmc failed", **plmc}
    S_plmc = _read_plmc_scores(ec, L)
    t0 = time.perf_counter()
    plmc_objective = Regularization("evcouplings", 0.01, 0.01)  # plmc's command above, not plm's default
    est = PlmDCA(regularization=plmc_objective, tolerance=None, max_iter=iterations).fit(prepare_data(msa))
    ours_s = time.perf_counter() - t0
    S_ours = est.scores_
    iu = np.triu_indices(L, 6)

    def top(S: np.ndarray) -> set[int]:
        return set(np.argsort(-S[iu], kind="stable")[:L].tolist())

    return {
        "family": family, "iterations": iterations, "L": L,
        "plmc_wall_s": plmc["wall_s"], "plm_wall_s": ours_s,
        "plm_objective": est.convergence_.final_objective,
        "plm_stop_reason": est.convergence_.stop_reason,
        "score_correlation": float(np.corrcoef(S_plmc[iu], S_ours[iu])[0, 1]),
        "top_L_shared": len(top(S_plmc) & top(S_ours)),
        "precision_plmc": score(S_plmc, args.data / dist_rel),
        "precision_plm": score(S_ours, args.data / dist_rel),
    }


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=list(TOOLS))
    ap.add_argument("--data", type=Path, default=DATA, help="protein families folder (ATTNPOTTS_PROTEINS)")
    ap.add_argument("--plmc", type=Path, default=PLMC, help="plmc binary (ATTNPOTTS_PLMC)")
    ap.add_argument("--ccmpred", type=Path, default=CCMPRED, help="CCMpred binary (ATTNPOTTS_CCMPRED)")
    ap.add_argument("--threads", type=int, default=2, help="threads of every tool")
    ap.add_argument("--factored-timeout", type=float, default=900.0, help="seconds per factored run")
    ap.add_argument("--factored-options", type=shlex.split, default=[],
                    help="more attnpotts contacts arguments of the factored runs, one string "
                    "(e.g. --factored-options=--symmetric)")
    ap.add_argument("--plm-options", type=shlex.split, default=[],
                    help="more attnpotts contacts arguments of the plm runs, one string "
                    "(e.g. --plm-options='--collapse neighbours')")
    ap.add_argument("--eval-families", nargs="*", default=["PF00014", "PF13354"],
                    help="families of the per-evaluation section")
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--skip-tools", action="store_true", help="skip the side-by-side table (section 1)")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--agreement", type=int, default=None, metavar="ITERATIONS",
                    help="also run plmc and attnpotts' plm for exactly ITERATIONS on each family and "
                    "compare their scores (section 4; e.g. 300: both converged)")
    ap.add_argument("--out", default="bench_dca.json", help="file name in benchmarks/results/")
    ap.add_argument("--append", action="store_true",
                    help="keep the rows of other families already in --out (a continued run; "
                    "each family's tools still run side by side)")
    ap.add_argument("--markdown", nargs="+", default=None, metavar="FILE[:TOOL,...]",
                    help="only print the Markdown table and summary of these result files and exit "
                    "(several files: rows of runs made apart, e.g. a slow peer run separately; a "
                    "(family, tool) row of a later file replaces an earlier one; FILE:plm,factored "
                    "takes only those tools' rows of FILE)")
    args = ap.parse_args(argv)
    if args.markdown is not None:
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for entry in args.markdown:
            path, _, only = str(entry).partition(":")
            tools = set(only.split(",")) if only else set(TOOLS)
            if not tools <= set(TOOLS):
                ap.error(f"--markdown {entry}: unknown tools {sorted(tools - set(TOOLS))}; known: {TOOLS}")
            for r in json.loads(Path(path).read_text())["tools"]:
                if r["tool"] in tools:
                    merged[r["family"], r["tool"]] = {**r, "result_file": Path(path).name}
        combined = sorted(merged.values(), key=lambda r: (list(FAMILIES).index(r["family"]),
                                                          TOOLS.index(r["tool"])))
        print(markdown(combined))
        print("\nsummary:", json.dumps(summarise(combined), indent=1))
        return 0
    if not args.data.is_dir():
        ap.error(f"no protein families folder {args.data}; pass --data or set ATTNPOTTS_PROTEINS")
    _check_out(ap, args.out)
    if args.agreement is not None and args.agreement < 1:
        ap.error(f"--agreement must be a number of iterations >= 1, got {args.agreement}")
    use_threads(ap, args.threads)
    record: dict[str, Any] = {"load_avg_start": _load(), "cpu_count": os.cpu_count(),
                              "threads": args.threads, "argv": sys.argv[1:],
                              "plmc": str(args.plmc), "ccmpred": str(args.ccmpred)}
    warn_single_threaded_peers(args, record)
    rows: list[dict[str, Any]] = []
    if args.append and (RESULTS / args.out).exists():
        previous = json.loads((RESULTS / args.out).read_text())
        rows += [r for r in previous.get("tools", []) if r["family"] not in args.families]
        earlier = {k: previous.get(k) for k in ("argv", "load_avg_start", "load_avg_end")}
        record["previous_runs"] = [*previous.get("previous_runs", []), earlier]
    record["tools"] = rows
    with tempfile.TemporaryDirectory() as tmpdir:
        for fam in [] if args.skip_tools else args.families:
            rows += run_family(fam, args.tools, Path(tmpdir), args)
            record["summary"] = summarise(rows)
            _save(record, args.out)
            print_tools([r for r in rows if r["family"] == fam])
    if rows:
        print_tools(rows)
        print("\n" + markdown(rows))
        record["summary"] = summarise(rows)
        print("\nsummary:", json.dumps(record["summary"], indent=1))
    if not args.skip_eval:
        record["evaluation"] = []
        for fam in args.eval_families:
            record["evaluation"] += bench_evaluation(fam, 3, args.data)
            _save(record, args.out)
        print(f"\n{'family':8} {'kernel':30} {'wall s':>8} {'cpu s':>8} {'x wall':>7} {'x cpu':>7} {'rel obj':>9}")
        for r in record["evaluation"]:
            print(f"{r['family']:8} {r['kernel']:30} {r['wall_s']:8.3f} {r['cpu_s']:8.3f} "
                  f"{r['speedup_wall']:7.2f} {r['speedup_cpu']:7.2f} {r['objective_rel_diff']:9.1e}")
    if not args.skip_memory:
        record["memory"] = [bench_memory(200, 5000, h) for h in (5, 3)]
        for m in record["memory"]:
            if "error" in m:
                print(f"\nmemory at L=200 (lbfgs_history {m['lbfgs_history']}): FAILED/REFUSED "
                      f"{m['error'][-400:]}")
            else:
                print(f"\nmemory at L=200, N=5000, lbfgs_history {m['lbfgs_history']}: peak RSS "
                      f"{m['peak_rss_gib']:.2f} GiB, estimate {m['estimate_gib']:.2f} GiB, target < 2 GiB")
    if args.agreement is not None and not args.plmc.exists():
        record["agreement"] = [{"family": fam, "skipped": f"no plmc binary at {args.plmc} (--plmc)"}
                               for fam in args.families]  # one row per family, as section 1
        print(f"\nagreement: skipped, no plmc binary at {args.plmc} (--plmc or ATTNPOTTS_PLMC)")
    elif args.agreement is not None:
        record["agreement"] = []
        with tempfile.TemporaryDirectory() as tmpdir:
            for fam in args.families:
                a = bench_agreement(fam, args.agreement, Path(tmpdir), args)
                record["agreement"].append(a)
                _save(record, args.out)
                if "error" in a:
                    print(f"\nagreement {fam}: plmc FAILED: {a.get('output_tail', '')[-400:]}")
                    continue
                print(f"\nagreement {fam} ({a['iterations']} iterations): score correlation "
                      f"{a['score_correlation']:.6f}, top-L shared {a['top_L_shared']} of {a['L']}, "
                      f"P@L plmc {a['precision_plmc']['L']:.3f}, plm {a['precision_plm']['L']:.3f}; "
                      f"{a['plmc_wall_s']:.1f} s / {a['plm_wall_s']:.1f} s")
    record["load_avg_end"] = _load()
    path = _save(record, args.out)
    print(f"\nload average {record['load_avg_start']:.1f} -> {record['load_avg_end']:.1f}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
