"""Child processes that do not outlive their parent, and a command's quick exit.

A worker of ``attnpotts reproduce`` (a ``ProcessPoolExecutor`` process) holds hundreds of MB;
when the parent is killed (``kill -9``, out of memory) nothing would stop it. On Linux,
:func:`die_with_parent` asks the kernel to send the worker SIGTERM when its parent dies
(``prctl(PR_SET_PDEATHSIG)``); elsewhere it is a no-op (the pool's own pipes still end idle
workers).

:func:`exit_now` ends a finished command without the interpreter's teardown, which after
``import torch`` costs 0.3-0.7 s of wall time and does nothing a finished command needs.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from typing import NoReturn

__all__ = ["die_with_parent", "exit_now"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Have the kernel send ``sig`` to this process when its parent dies; True if arranged.

    Call it first thing in a worker process (e.g. as a pool initializer). If the parent died
    before the call, the process exits at once.
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    libc_name = ctypes.util.find_library("c") or "libc.so.6"
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(libc_name, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0:
            if parent == 1 or os.getppid() != parent:  # the parent died before the call
                os._exit(1)
            return True
    return False


def exit_now(status: int) -> NoReturn:
    """End this process with exit status ``status``, skipping the interpreter's teardown.

    What teardown does that a finished command needs runs first: the ``atexit`` handlers
    (logging's flush, ``weakref.finalize`` clean-ups, multiprocessing's) and a flush of the
    standard streams; then :func:`os._exit`. Falls back to :func:`sys.exit` when skipping could
    lose something: another Python thread is alive (teardown would wait for it), or a tracer or
    profiler is attached (coverage and cProfile write their results at teardown).
    """
    if threading.active_count() > 1 or sys.gettrace() is not None or sys.getprofile() is not None:
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed or broken pipe
            stream.flush()
    os._exit(status)
