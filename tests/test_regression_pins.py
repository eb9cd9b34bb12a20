"""Regression pins: refactors must not change results (bit for bit on the machine that wrote the pins).

Two runs are pinned against files in ``tests/pins/``:

- ``attnpotts reproduce --quick``: every number of ``results.json`` under ``stages/*/summary`` and
  the claims' evidence, except measured times (keys ending in ``_s`` or ``time``), compared with
  ``==`` (JSON floats round-trip exactly).
- ``attnpotts contacts`` on the shipped PF00014 alignment with explicit options (so that a change
  of defaults does not move the pin): the SHA-256 of the fitted couplings and fields as the
  package's reader loads them from ``couplings.npz``, of ``scores.mat``, their norms, and the fit's
  objective and evaluation count.

The numba kernels reduce per-thread partial sums, so the pins are taken with 2 numba threads
(the CI machine's count); the test sets that count when the machine allows it.

Bit for bit holds on one machine only: another CPU (or torch, numpy, numba, or MKL's code path
for it) rounds differently, and a run's numbers then differ in their last digits (seen between
the machine of the earlier pins and an AMD EPYC: relative differences up to 5e-5 in reproduce's fitted numbers,
rounding residuals of 1e-16 in place of 2e-16). Each pin file records the machine that wrote it
(``_machine``: CPU, its torch capability and LLVM name, library versions and thread counts,
which set the order of parallel sums). On that machine the
comparison is exact; on any other, numbers (also those inside text, such as a claim's reason)
must agree within a relative ``RTOL`` or an absolute ``ATOL`` (rounding residuals), everything
else exactly, and hashes of raw bytes are left out in favour of the numbers pinned beside them.

A change that is *meant* to move a number regenerates the pins with
``ATTNPOTTS_REGEN_PINS=1 pytest tests/test_regression_pins.py`` and says why in its commit.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from attnpotts.cli.main import main
from attnpotts.formats import load_couplings_npz
from attnpotts.storage import atomic_write_text

PINS = Path(__file__).resolve().parent / "pins"
DATA = Path(__file__).resolve().parents[1] / "src" / "attnpotts" / "data" / "PF00014"
REGEN = os.environ.get("ATTNPOTTS_REGEN_PINS") == "1"
#: Measured times and machine facts: not results.
_UNPINNED = re.compile(r"(_s|time|_seconds|n_workers|threads_per_worker)$")
#: Tolerances of a pin read on another machine than the one that wrote it (module docstring).
RTOL, ATOL = 1e-3, 1e-12
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def machine() -> str:
    """What decides the last digits of a run: the CPU and the numeric libraries."""
    import llvmlite.binding
    import numba
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return (f"{cpu}; {torch.backends.cpu.get_cpu_capability()}; {llvmlite.binding.get_host_cpu_name()}; "
            f"torch {torch.__version__} on {torch.get_num_threads()} threads, numpy {np.__version__}, "
            f"numba {numba.__version__} on {numba.get_num_threads()} threads")


@pytest.fixture(autouse=True)
def _two_numba_threads() -> Iterator[None]:
    import numba

    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    yield  # tests/conftest.py puts the count back


def _leaves(x: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _leaves(v, f"{path}/{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, x


def _pinned_numbers(results: dict[str, Any]) -> dict[str, Any]:
    """The result numbers (and verdicts) of a reproduce results document, by JSON path."""
    keep = {"stages": {k: v.get("summary") for k, v in results["stages"].items()},
            "claims": results.get("claims")}  # fmt: skip
    out: dict[str, Any] = {}
    for path, value in _leaves(keep):
        if _UNPINNED.search(path.split("[")[0] if path.endswith("]") else path):
            continue
        if isinstance(value, (bool, int, float, str)) or value is None:
            out[path] = value
    return out


def _close(a: Any, b: Any) -> bool:
    """``a`` and ``b`` agree up to rounding: numbers within ``RTOL``/``ATOL``, text with its numbers
    so, anything else exactly."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=RTOL, abs_tol=ATOL) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, str) and isinstance(b, str):
        na, nb = _NUMBER.findall(a), _NUMBER.findall(b)
        return (_NUMBER.sub("#", a) == _NUMBER.sub("#", b) and len(na) == len(nb)
                and all(_close(float(x), float(y)) for x, y in zip(na, nb, strict=True)))
    return bool(a == b)


def _compare(pin_file: Path, got: dict[str, Any]) -> None:
    if REGEN:
        atomic_write_text(pin_file, json.dumps({"_machine": machine(), **got}, indent=1, sort_keys=True) + "\n")
        return
    want = json.loads(pin_file.read_text())
    exact = want.pop("_machine", None) == machine()
    keys = sorted(set(want) | set(got))
    if not exact:  # raw-byte hashes hold on the pinning machine only; their numbers are pinned too
        keys = [k for k in keys if not k.endswith("_sha256")]
    same = (lambda a, b: a == b) if exact else _close
    changed = {k: (want.get(k), got.get(k)) for k in keys
               if not same(want.get(k, "<absent>"), got.get(k, "<absent>"))}  # fmt: skip
    how = "bit for bit" if exact else f"within rtol {RTOL:g} / atol {ATOL:g} (pins of another machine)"
    assert not changed, (
        f"{len(changed)} pinned values changed {how} (pinned, now); first ones: "
        + "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(changed.items())[:8])
    )


def test_reproduce_quick_pinned(tmp_path: Path) -> None:
    out = tmp_path / "quick"
    assert main(["reproduce", "--quick", "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    numbers = _pinned_numbers(results)
    assert len(numbers) > 100  # the pin covers every stage, not a handful of values
    _compare(PINS / "reproduce_quick.json", numbers)


def _sha(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()


def test_contacts_pinned(tmp_path: Path) -> None:
    out = tmp_path / "c"
    argv = ["contacts", str(DATA / "PF00014_mgap6.fasta.gz"),
            "--distances", str(DATA / "PF00014.distances.tsv"), "--out", str(out),
            "--model", "plm", "--max-iter", "10", "--regularization", "evcouplings",
            "--lambda-j", "0.01", "--lambda-h", "0.01", "--score-gap", "include",
            "--identity-threshold", "0.8", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    params = load_couplings_npz(out / "couplings.npz")
    summary = json.loads((out / "summary.json").read_text())
    conv = summary["convergence"]
    got = {
        "couplings_sha256": _sha(params.couplings),
        "fields_sha256": _sha(params.fields),
        "couplings_norm": float(np.linalg.norm(params.couplings)),
        "fields_norm": float(np.linalg.norm(params.fields)),
        "scores_norm": float(np.linalg.norm(np.loadtxt(out / "scores.mat"))),
        "scores_mat_sha256": hashlib.sha256((out / "scores.mat").read_bytes()).hexdigest(),
        "final_objective": conv["final_objective"],
        "evaluations": conv["evaluations"],
        "iterations": conv["iterations"],
        "precision_L": summary["precision"]["L"],
    }
    _compare(PINS / "contacts_pf00014.json", got)
