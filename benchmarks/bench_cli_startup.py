"""Start-up of the command line: ``--help``, ``--version`` and each ``COMMAND --help``, this tree
against a baseline commit, interleaved.

Usage:  python benchmarks/bench_cli_startup.py [--baseline REV] [--repeats 5]

Each command runs as a fresh ``python -m attnpotts ...`` process importing either the package as
of ``--baseline`` (default ``d66aebe``, the last commit before the parsers stopped importing
torch and numba; extracted with ``git archive`` into a temporary folder) or the ``src/`` of this
tree; the wall clock is read around the whole process. The two versions alternate (``--repeats``
rounds, the order flipped every round) so that a shared machine's load reaches both alike; the
table gives the medians and the ratios new / old. Writes
``benchmarks/results/bench_cli_startup.json`` atomically.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_lbfgs_alloc import _extract  # src/ of a git revision, as that benchmark takes it

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
COMMANDS = ("--help", "--version", "sample --help", "train --help", "evaluate --help",
            "contacts --help", "theory --help", "reproduce --help")


def _time(src: Path, command: str) -> float:
    """Wall seconds of ``python -m attnpotts COMMAND`` importing the package under ``src``."""
    env = dict(os.environ, PYTHONPATH=str(src))
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "attnpotts", *command.split()], env=env,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0 or not done.stdout:
        raise RuntimeError(f"attnpotts {command} failed under {src}: {done.stderr[-500:]}")
    return wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="d66aebe", help="git revision of the 'old' code")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be at least 1, got {args.repeats}")

    from attnpotts.storage import atomic_write_json

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_cli_startup_") as tmp:
        versions = {"old": _extract(args.baseline, Path(tmp) / "baseline"), "new": ROOT / "src"}
        for r in range(args.repeats):
            for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
                for command in COMMANDS:
                    rows.append({"round": r, "code": name, "command": command,
                                 "load_avg": os.getloadavg()[0], "wall_s": _time(versions[name], command)})
    table: dict[str, dict[str, float]] = {}
    print(f"{'command':18} {'old s':>6} {'new s':>6} {'new/old':>7}")
    for command in COMMANDS:
        med = {name: statistics.median(row["wall_s"] for row in rows
                                       if row["code"] == name and row["command"] == command)
               for name in ("old", "new")}
        table[command] = {**med, "ratio_new_over_old": med["new"] / med["old"]}
        print(f"{command:18} {med['old']:6.2f} {med['new']:6.2f} {med['new'] / med['old']:7.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = atomic_write_json(RESULTS / "bench_cli_startup.json", {
        "settings": {"baseline": args.baseline, "repeats": args.repeats, "python": sys.version.split()[0]},
        "cpu_count": os.cpu_count(), "rows": rows, "medians": table,
    })
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
