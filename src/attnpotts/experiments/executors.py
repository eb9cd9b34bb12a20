"""Executors: run jobs on local processes or on a Dask distributed cluster, yielding as they finish.

Both give identical results for the same runs, because every run carries its own seed
(:class:`~attnpotts.experiments.RunSpec`) and tasks are pure. For bit-identical floating-point
results the workers must also use the same number of threads: :class:`LocalExecutor` pins its worker
processes to ``threads_per_worker`` threads (default 1), as Dask's nanny does for its workers
(``OMP_NUM_THREADS=1``). Inline execution (``n_workers=1``) runs in the calling process with
torch's and numba's thread counts set to ``threads_per_worker`` for the duration of each job (numpy's BLAS
threads cannot be changed after start-up; the built-in tasks use BLAS only on matrices too small
for threading to change the result, which the tests check).

This module is the only place in attnpotts that imports Dask, lazily, inside :class:`DaskExecutor`.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from ..errors import MissingDependencyError, ValidationError
from .runner import Job, RunFailure, RunResult, execute_job

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "make_executor"]

logger = logging.getLogger(__name__)


class Executor(Protocol):
    """Something that runs jobs and yields their outcomes in completion order."""

    def map_unordered(self, jobs: Sequence[Job]) -> Iterator[RunResult | RunFailure]:
        """Run ``jobs``; yield each outcome as soon as it is available."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON description for manifests (kind, workers, address)."""
        ...

    def close(self) -> None:
        """Release workers or connections."""
        ...


def _init_worker(threads: int) -> None:
    """Pin a fresh worker process to ``threads`` threads before any numeric library starts."""
    from ..processes import die_with_parent
    from ..threads import set_threads

    die_with_parent()  # a killed reproduce must not leave its workers running
    # torch and numba read the variables when first imported, which happens later, in the first job.
    set_threads(threads)


@contextlib.contextmanager
def _numeric_threads(threads: int) -> Iterator[None]:
    """Run the block with torch's and numba's threads set to ``threads``, then restore them.

    Float32 reductions in torch, and the per-thread partial sums of the numba kernels (e.g. the
    fused pseudo-likelihood), depend on the thread count, so inline runs use the same count as
    worker processes (this imports torch and numba, dependencies of attnpotts anyway).
    """
    import numba
    import torch

    old_torch, old_numba = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.set_num_threads(old_torch)
        numba.set_num_threads(old_numba)


def _execute_pinned(job: Job, threads: int) -> RunResult | RunFailure:
    """:func:`execute_job` with torch's and numba's threads set to ``threads`` (Dask workers)."""
    with _numeric_threads(threads):
        return execute_job(job)


class LocalExecutor:
    """Run jobs inline (``n_workers=1``) or on a pool of ``n_workers`` fresh processes.

    Args:
        n_workers: number of worker processes; 1 runs every job in the calling process.
        threads_per_worker: threads of numeric libraries in each worker process.
        start_method: multiprocessing start method of the workers (``"spawn"``: fresh interpreters,
            safe with torch and numba; ``"forkserver"`` also works).
    """

    def __init__(
        self, n_workers: int = 1, *, threads_per_worker: int = 1, start_method: str = "spawn"
    ) -> None:
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise ValidationError(f"n_workers must be an integer >= 1, got {n_workers!r}")
        if threads_per_worker < 1:
            raise ValidationError(f"threads_per_worker must be >= 1, got {threads_per_worker}")
        if start_method not in multiprocessing.get_all_start_methods():
            raise ValidationError(
                f"start_method {start_method!r} is not available here; choose one of "
                f"{multiprocessing.get_all_start_methods()}"
            )
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.start_method = start_method

    def describe(self) -> dict[str, Any]:
        """See :meth:`Executor.describe`."""
        return {
            "kind": "local",
            "n_workers": self.n_workers,
            "threads_per_worker": self.threads_per_worker,
            "mode": "inline" if self.n_workers == 1 else f"processes ({self.start_method})",
        }

    def map_unordered(self, jobs: Sequence[Job]) -> Iterator[RunResult | RunFailure]:
        """See :meth:`Executor.map_unordered`."""
        if self.n_workers == 1:
            for job in jobs:
                with _numeric_threads(self.threads_per_worker):
                    outcome = execute_job(job)
                yield outcome
            return
        if not jobs:
            return
        ctx = multiprocessing.get_context(self.start_method)
        pool = ProcessPoolExecutor(
            max_workers=min(self.n_workers, len(jobs)),
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(self.threads_per_worker,),
        )
        try:
            pending: set[Future[RunResult | RunFailure]] = set()
            futures: dict[Future[RunResult | RunFailure], Job] = {}
            for job in jobs:
                fut = pool.submit(execute_job, job)
                futures[fut] = job
                pending.add(fut)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield _outcome(fut, futures[fut])
        finally:
            # Cancels what has not started when the consumer stops early (error, interrupt).
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Nothing to release (pools live for one :meth:`map_unordered` call)."""


def _outcome(fut: Any, job: Job) -> RunResult | RunFailure:
    try:
        return fut.result()
    except Exception as exc:  # the worker itself died (killed, out of memory, unpicklable)
        return RunFailure(
            run=job.run,
            error_type=type(exc).__name__,
            message=f"worker failed: {exc}",
            traceback="",
        )


class DaskExecutor:
    """Run jobs on a Dask distributed cluster: a running one, or one it starts on this machine.

    Args:
        address: scheduler address (``"tcp://HOST:PORT"`` or ``"HOST:PORT"``); or
        client: an existing ``dask.distributed.Client`` (not closed by :meth:`close`); or
        n_workers: start a local cluster of this many worker processes (one thread each),
            closed by :meth:`close`. Its workers die with this process, even on ``kill -9``
            (:mod:`attnpotts.experiments.dask_worker`).
        timeout_s: how long to try to reach the scheduler at ``address``.
        threads_per_job: torch and numba threads each job uses on its worker (default 1, the
            :class:`LocalExecutor` default, so that both give bit-identical results).

    The workers need attnpotts (and the modules registering the tasks) importable; results come
    back to this process, which writes them, so workers need no shared file system. The workers
    of a cluster at ``address`` belong to that cluster: they outlive this process, which only
    submits to them.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        client: Any = None,
        n_workers: int | None = None,
        timeout_s: float = 30.0,
        threads_per_job: int = 1,
    ) -> None:
        if sum(x is not None for x in (address, client, n_workers)) != 1:
            raise ValidationError(
                "give exactly one of address (HOST:PORT), client or n_workers (a local cluster)"
            )
        if n_workers is not None and (
            isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1
        ):
            raise ValidationError(f"n_workers must be an integer >= 1, got {n_workers!r}")
        if int(threads_per_job) < 1:
            raise ValidationError(f"threads_per_job must be >= 1, got {threads_per_job}")
        self.threads_per_job = int(threads_per_job)
        try:
            from dask.distributed import Client
        except ImportError as exc:  # an optional extra: a user's error, not a bug (exit 2)
            raise MissingDependencyError(
                "the Dask executor needs dask.distributed, which is not installed: pip install "
                "'attnpotts[dask]' (or run with --executor local)"
            ) from exc
        self._owns_client = client is None
        self._cluster: Any = None
        if n_workers is not None:
            client = self._start_local_cluster(n_workers)
        elif client is None:
            assert address is not None
            if "://" not in address:
                address = f"tcp://{address}"
            try:
                client = Client(address, timeout=f"{timeout_s}s")
            except OSError as exc:
                raise ConnectionError(
                    f"cannot reach a Dask scheduler at {address} ({exc}); start one with "
                    "`dask scheduler` and `dask worker ADDRESS`, or use --executor local"
                ) from exc
        self.client = client
        self.address = str(client.scheduler.address)

    def _start_local_cluster(self, n_workers: int) -> Any:
        """A cluster of ``n_workers`` processes on this machine whose workers die with this process."""
        from dask.distributed import Client, LocalCluster

        from . import dask_worker

        self._cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            # any free port: the default 8787 may be taken (another cluster, a notebook's)
            dashboard_address=":0",
            preload=[dask_worker.__name__],
        )
        try:
            return Client(self._cluster)
        except BaseException:
            self._cluster.close()
            raise

    def describe(self) -> dict[str, Any]:
        """See :meth:`Executor.describe`."""
        info = self.client.scheduler_info()
        workers = info.get("workers", {})
        return {
            "kind": "dask",
            "address": self.address,
            "n_workers": len(workers),
            "threads": int(sum(w.get("nthreads", 0) for w in workers.values())),
            "cluster": "local" if self._cluster is not None else "external",
        }

    def map_unordered(self, jobs: Sequence[Job]) -> Iterator[RunResult | RunFailure]:
        """See :meth:`Executor.map_unordered`."""
        from dask.distributed import as_completed

        if not jobs:
            return
        futures = {}
        for job in jobs:
            fut = self.client.submit(_execute_pinned, job, self.threads_per_job, pure=False)
            futures[fut.key] = (fut, job)
        try:
            for fut in as_completed([f for f, _ in futures.values()]):
                yield _outcome(fut, futures[fut.key][1])
        finally:
            self.client.cancel([f for f, _ in futures.values() if not f.done()])

    def close(self) -> None:
        """Close the client if this executor opened it, and the cluster if it started one."""
        if self._owns_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def make_executor(
    kind: str = "local", *, n_workers: int = 1, address: str | None = None
) -> LocalExecutor | DaskExecutor:
    """``"local"`` -> :class:`LocalExecutor` (``n_workers``); ``"dask"`` -> :class:`DaskExecutor`
    on the cluster at ``address``, or without one on a local cluster of ``n_workers`` processes."""
    if kind == "local":
        if address is not None:
            raise ValidationError("--address is only for --executor dask")
        return LocalExecutor(n_workers)
    if kind == "dask":
        return DaskExecutor(n_workers=n_workers) if address is None else DaskExecutor(address)
    raise ValidationError(f"executor must be 'local' or 'dask', got {kind!r}")
