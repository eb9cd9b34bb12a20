"""The pure runner: one run in, its result (metrics, artifacts, timings, environment) out.

:func:`run` calls the registered task with the run's parameters and ``SeedSequence`` and wraps what
it returns with wall and CPU time and the versions of the libraries that computed it. It touches no
global state and writes nothing: storing results is the job of
:class:`~attnpotts.experiments.store.ResultsStore`, in the process that drives the sweep, so that
Dask workers need no shared file system.

:func:`execute_job` is the function executors ship to worker processes: it never raises for a
failing task but returns a :class:`RunFailure` carrying the formatted traceback (arbitrary exception
objects do not always pickle).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..errors import ValidationError
from ..random import SeedLike, as_seed_sequence
from ..storage import environment_info, to_jsonable
from .registry import TaskResult, get_task, task_module
from .spec import RunSpec, thaw

__all__ = ["Job", "RunFailure", "RunResult", "execute_job", "make_job", "run"]


@dataclass(frozen=True)
class RunResult:
    """A finished run.

    Attributes:
        run: the run that was executed.
        output: the task's :class:`TaskResult`.
        timings: ``started``/``finished`` (UTC ISO 8601), ``wall_s``, ``cpu_s`` (process time of
            the worker), ``host`` and ``pid`` of the worker.
        environment: :func:`attnpotts.storage.environment_info` of the worker.
    """

    run: RunSpec
    output: TaskResult
    timings: Mapping[str, Any]
    environment: Mapping[str, Any]


@dataclass(frozen=True)
class RunFailure:
    """A run whose task raised: the exception type, message and formatted traceback."""

    run: RunSpec
    error_type: str
    message: str
    traceback: str

    def __str__(self) -> str:
        return f"{self.run.run_id} (run {self.run.index}): {self.error_type}: {self.message}"


@dataclass(frozen=True)
class Job:
    """A run plus the modules a worker must import to find its task."""

    run: RunSpec
    modules: tuple[str, ...] = ()


def _coerce_output(out: Any, task: str) -> TaskResult:
    if isinstance(out, TaskResult):
        result = out
    elif isinstance(out, Mapping):
        result = TaskResult(metrics=out)
    else:
        raise ValidationError(
            f"task {task!r} returned {type(out).__name__}; return a TaskResult or a mapping of "
            "metrics"
        )
    # Metrics must survive JSON exactly as written (no NaN surprises later on).
    metrics = to_jsonable(thaw(result.metrics))
    arrays = {k: np.asarray(v) for k, v in result.arrays.items()}
    return TaskResult(metrics=metrics, arrays=arrays, figures=dict(result.figures))


def run(run_spec: RunSpec, seed: SeedLike = None) -> RunResult:
    """Execute one run and return its result (pure: nothing is written, no global state changed).

    Args:
        run_spec: the run; its task must be registered (or importable via the built-ins).
        seed: overrides the run's own ``SeedSequence`` (``None``: use ``run_spec.seed_sequence``);
            the returned result's ``run`` then carries this seed.

    Raises:
        whatever the task raises; :class:`ValidationError` for an unknown task or bad output.
    """
    fn = get_task(run_spec.task)
    if seed is not None:
        # the result must say which seed produced it: re-label the run with the given seed
        given = as_seed_sequence(seed)
        if not isinstance(given.entropy, int | np.integer):
            raise ValidationError("seed must be an int or a SeedSequence with integer entropy")
        run_spec = dataclasses.replace(
            run_spec, seed_entropy=int(given.entropy), spawn_key=tuple(given.spawn_key)
        )
    ss = run_spec.seed_sequence
    started = datetime.now(UTC)
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(run_spec.params, ss)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    timings = {
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "wall_s": wall,
        "cpu_s": cpu,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    return RunResult(
        run=run_spec,
        output=_coerce_output(out, run_spec.task),
        timings=timings,
        environment=environment_info(),
    )


def make_job(run_spec: RunSpec) -> Job:
    """A :class:`Job` that names the module registering the run's task (resolved here)."""
    fn = get_task(run_spec.task)
    module = task_module(fn)
    modules = (module,) if module and module != "__main__" else ()
    return Job(run=run_spec, modules=modules)


def execute_job(job: Job) -> RunResult | RunFailure:
    """Worker entry point: import the task's module, run, and turn exceptions into failures."""
    try:
        get_task(job.run.task, modules=job.modules)
        return run(job.run)
    except Exception as exc:
        return RunFailure(
            run=job.run,
            error_type=type(exc).__name__,
            message=str(exc),
            traceback=traceback.format_exc(),
        )
