"""Options every command shares, defined once (their flags are the CLI's common flags)."""

from __future__ import annotations

from typing import Any

from .spec import integer, number

__all__ = ["DEFAULT_MEMORY_LIMIT_GB", "memory_limit", "thread_count"]

#: The one default of ``--memory-limit-gb`` (GiB) for every command and for the library calls
#: behind them: estimated peak memory of the large arrays a command would allocate; above it the
#: command refuses before allocating.
DEFAULT_MEMORY_LIMIT_GB = 8.0


def memory_limit() -> Any:
    """The ``memory_limit_gb`` option field of every command's options."""
    return number(
        DEFAULT_MEMORY_LIMIT_GB, 0, 1e6, low_open=True, flag="",
        help="refuse work whose estimated memory is above this many GiB",
    )  # fmt: skip


def thread_count() -> Any:
    """The ``threads`` option of the computing commands: CPU threads of torch and numba for the
    run (:func:`attnpotts.threads.set_threads`); none keeps the libraries' own default."""
    return integer(
        None, 1, 4096, none=True, metavar="N",
        help="CPU threads for torch and numba (default: one per core, or OMP_NUM_THREADS / "
        "NUMBA_NUM_THREADS when set)",
    )  # fmt: skip
