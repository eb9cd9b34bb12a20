"""Set-up of the Dask worker processes a :class:`~attnpotts.experiments.DaskExecutor` starts itself.

Dask calls :func:`dask_setup` in every worker process at start-up (the worker's ``preload``). It
asks the kernel to end the worker when its parent, the process that started the cluster, dies
(:func:`attnpotts.processes.die_with_parent`), so a killed ``reproduce`` leaves no workers. The
nanny's pipe to the worker does the same when it closes, watched by a Python thread of the worker;
the kernel's signal also comes when a task holds the interpreter lock, or when another process of
the parent inherited the pipe's write end. (The kernel sends it when the parent's thread that
started the worker ends; Dask starts each worker from a thread that lives as long as the worker.)
"""

from __future__ import annotations

from typing import Any

from ..processes import die_with_parent

__all__ = ["dask_setup"]


def dask_setup(worker: Any) -> None:
    """Dask's preload hook, called once in each worker process before it takes tasks."""
    die_with_parent()
