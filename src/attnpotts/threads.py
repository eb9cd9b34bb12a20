"""CPU threads of the numeric libraries: one call behind the CLI's ``--threads`` and for scripts.

torch, numba and the BLAS libraries each start a pool of threads, by default one per core. On a
shared machine (a cluster node, a laptop running other work) a user wants fewer, as plmc's ``-n``
and CCMpred's ``-t`` allow. The libraries read their environment variables when they load, so
:func:`set_threads` sets those for the libraries not loaded yet (and for child processes), and sets
the running pools of those already loaded. The count also fixes the order of parallel sums, so the
same seed gives the same numbers bit for bit only with the same count (``docs/conventions.md``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .errors import ValidationError

__all__ = ["THREAD_VARS", "set_threads", "thread_counts"]

#: Environment variables that fix the thread pools of OpenMP (torch), MKL, OpenBLAS and numba.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def set_threads(n: int) -> None:
    """Use ``n`` CPU threads in torch and numba kernels (and BLAS, if it has not loaded yet).

    Call it before the libraries load (first thing in a script, as the CLI does) to size their
    pools; later it resizes torch's pool and numba's (up to the size numba started with).

    Raises:
        ValidationError: ``n`` is not an integer >= 1, or numba already runs with fewer threads.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValidationError(f"threads must be an integer >= 1, got {n!r}")
    numba_loaded = "numba" in sys.modules
    if numba_loaded:
        import numba

        most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
        if n > most:
            raise ValidationError(
                f"numba started with {most} thread(s), so it cannot use {n}; call set_threads "
                "before numba loads (before importing attnpotts' kernels), or set "
                f"NUMBA_NUM_THREADS={n} in the environment"
            )
    for var in THREAD_VARS:
        if var == "NUMBA_NUM_THREADS" and numba_loaded:
            continue  # numba refuses a new value once its threads run; set below instead
        os.environ[var] = str(n)
    if numba_loaded:
        numba.set_num_threads(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)


def thread_counts() -> dict[str, Any]:
    """The thread counts in effect, for run manifests: torch's and numba's where they are loaded
    (none otherwise), and the variables of :data:`THREAD_VARS` that are set. Nothing is imported
    or started: before numba's pool starts, its count is the size it will start with."""
    torch = sys.modules.get("torch")
    numba = sys.modules.get("numba")
    numba_threads = None
    if numba is not None:
        parallel = sys.modules.get("numba.np.ufunc.parallel")
        started = parallel is not None and bool(getattr(parallel, "_is_initialized", False))
        numba_threads = int(numba.get_num_threads() if started else numba.config.NUMBA_NUM_THREADS)
    return {
        "torch": int(torch.get_num_threads()) if torch is not None else None,
        "numba": numba_threads,
        "environment": {v: os.environ[v] for v in THREAD_VARS if v in os.environ},
    }
