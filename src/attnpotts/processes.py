"""Child processes that do not outlive their parent.

A worker of ``attnpotts reproduce`` (a ``ProcessPoolExecutor`` process) holds hundreds of MB;
when the parent is killed (``kill -9``, out of memory) nothing would stop it. On Linux,
:func:`die_with_parent` asks the kernel to send the worker SIGTERM when its parent dies
(``prctl(PR_SET_PDEATHSIG)``); elsewhere it is a no-op (the pool's own pipes still end idle
workers).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys

__all__ = ["die_with_parent"]

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
