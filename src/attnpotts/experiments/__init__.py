"""Experiments: frozen specs, a pure runner, a results store with resume, local and Dask executors.

A spec (:class:`ExperimentSpec`, TOML) expands into runs (:class:`RunSpec`), each naming a registered
task, its parameters and its own seed derived with ``SeedSequence.spawn``. :func:`run_experiment`
runs the missing ones on an executor (:class:`LocalExecutor` or :class:`DaskExecutor`) and writes
each result atomically into a :class:`ResultsStore`, one folder per run named by its config hash.

This is the only sub-package of attnpotts that imports Dask (lazily, in :class:`DaskExecutor`).
"""

from .executors import DaskExecutor, Executor, LocalExecutor, make_executor
from .registry import TaskResult, get_task, register_task, registered_tasks
from .runner import Job, RunFailure, RunResult, execute_job, make_job, run
from .spec import ExperimentSpec, RunSpec, freeze, load_spec, thaw
from .store import ResultsStore, StoredRun, StoreLockedError
from .sweep import RunFailedError, SweepReport, run_experiment, run_runs

__all__ = [
    "DaskExecutor",
    "Executor",
    "ExperimentSpec",
    "Job",
    "LocalExecutor",
    "ResultsStore",
    "RunFailedError",
    "RunFailure",
    "RunResult",
    "RunSpec",
    "StoreLockedError",
    "StoredRun",
    "SweepReport",
    "TaskResult",
    "execute_job",
    "freeze",
    "get_task",
    "load_spec",
    "make_executor",
    "make_job",
    "register_task",
    "registered_tasks",
    "run",
    "run_experiment",
    "run_runs",
    "thaw",
]
