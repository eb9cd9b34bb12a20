"""Run a sweep: expand a spec, skip finished runs, execute the rest, write each result as it lands.

Results are written by this (driver) process as soon as each run finishes, one atomic folder per run
(:class:`~attnpotts.experiments.ResultsStore`). Killing the driver at any moment therefore loses only
the runs in flight; running the same spec again computes exactly the runs whose folders are missing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import AttnPottsError, ValidationError
from .executors import Executor, LocalExecutor
from .runner import RunFailure, RunResult, make_job
from .spec import ExperimentSpec, RunSpec
from .store import ResultsStore, StoredRun

__all__ = ["RunFailedError", "SweepReport", "run_experiment", "run_runs"]

logger = logging.getLogger(__name__)


class RunFailedError(AttnPottsError, RuntimeError):
    """Some runs of a sweep raised; the others were written. Carries the :class:`SweepReport`."""

    def __init__(self, message: str, report: SweepReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class SweepReport:
    """What a sweep did.

    Attributes:
        runs: every run of the sweep, in expansion order.
        computed: run ids computed (and written) by this call.
        skipped: run ids found complete in the store and not recomputed.
        failures: runs whose task raised (not written; a later call retries them).
        executor: description of the executor.
        wall_s: wall time of the call.
    """

    runs: tuple[RunSpec, ...]
    computed: tuple[str, ...]
    skipped: tuple[str, ...]
    failures: tuple[RunFailure, ...]
    executor: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every run of the sweep is in the store."""
        return not self.failures

    def results(self, store: ResultsStore) -> list[StoredRun]:
        """The stored results of all runs, in expansion order (raises if one is missing)."""
        return [store.load(r) for r in self.runs]

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts and failure messages."""
        return {
            "n_runs": len(self.runs),
            "n_computed": len(self.computed),
            "n_skipped": len(self.skipped),
            "n_failed": len(self.failures),
            "failures": [str(f) for f in self.failures],
            "executor": self.executor,
            "wall_s": self.wall_s,
        }


def run_runs(
    runs: Sequence[RunSpec],
    store: ResultsStore | str | os.PathLike[str],
    executor: Executor | None = None,
    *,
    raise_on_failure: bool = True,
    progress: bool = False,
    description: str = "runs",
    on_result: Callable[[RunSpec, RunResult | RunFailure | None], None] | None = None,
) -> SweepReport:
    """Execute the runs missing from ``store`` and write each one as it finishes.

    Args:
        runs: runs to have in the store (already finished ones are skipped).
        store: the results store (or its folder).
        executor: where to run (default: inline in this process).
        raise_on_failure: raise :class:`RunFailedError` after all other runs are written if any
            task raised; otherwise report failures in the returned :class:`SweepReport`.
        progress: show a progress bar (tqdm, on stderr).
        description: label of the progress bar and log lines.
        on_result: called as ``on_result(run, outcome)`` after each run is written (or failed),
            and with ``outcome=None`` for every run found complete (for progress and ETA).

    Raises:
        ValidationError: two runs have the same identity.
        RunFailedError: see ``raise_on_failure``.
        StoreLockedError: another live sweep writes into the same store.
    """
    if not isinstance(store, ResultsStore):
        store = ResultsStore(store)
    executor = executor if executor is not None else LocalExecutor(1)
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValidationError(
            f"runs {', '.join(dup)} appear twice (same task, params and seed); give each run its "
            "own seed or parameters"
        )
    t0 = time.perf_counter()
    with store.lock():
        stale = store.remove_stale()
        if stale:
            logger.info("removed %d temporary folder(s) of killed runs in %s", len(stale), store.root)
        todo = [r for r in runs if not store.is_complete(r)]
        skipped = tuple(r.run_id for r in runs if store.is_complete(r))
        logger.info(
            "%s: %d runs, %d already done, %d to compute on %s",
            description, len(runs), len(skipped), len(todo), executor.describe(),
        )
        if on_result is not None:
            done = set(skipped)
            for r in runs:
                if r.run_id in done:
                    on_result(r, None)
        computed, failures = _execute(todo, store, executor, progress, description, on_result)
    report = SweepReport(
        runs=tuple(runs),
        computed=tuple(computed),
        skipped=skipped,
        failures=tuple(failures),
        executor=executor.describe(),
        wall_s=time.perf_counter() - t0,
    )
    if failures and raise_on_failure:
        lines = "\n".join(f"  {f}" for f in failures)
        raise RunFailedError(
            f"{len(failures)} of {len(runs)} runs failed ({len(computed)} computed and written, "
            f"{len(skipped)} already done); fix the cause and run again to compute only the "
            f"missing runs:\n{lines}",
            report,
        )
    return report


def _execute(
    todo: Sequence[RunSpec],
    store: ResultsStore,
    executor: Executor,
    progress: bool,
    description: str,
    on_result: Callable[[RunSpec, RunResult | RunFailure | None], None] | None,
) -> tuple[list[str], list[RunFailure]]:
    """Run ``todo`` on ``executor``, writing each result into ``store`` as it arrives (call it
    holding the store's lock); the ids of the runs written and the failures."""
    computed: list[str] = []
    failures: list[RunFailure] = []
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=description, unit="run")
    try:
        for outcome in executor.map_unordered([make_job(r) for r in todo]):
            if isinstance(outcome, RunResult):
                store.write(outcome)
                computed.append(outcome.run.run_id)
                logger.info(
                    "%s: finished %s in %.1f s",
                    description, outcome.run.run_id, outcome.timings["wall_s"],
                )  # fmt: skip
            else:
                failures.append(outcome)
                logger.error("%s: run failed: %s\n%s", description, outcome, outcome.traceback)
            if bar is not None:
                bar.update(1)
            if on_result is not None:
                on_result(outcome.run, outcome)
    finally:
        if bar is not None:
            bar.close()
    return computed, failures


def run_experiment(
    spec: ExperimentSpec,
    store: ResultsStore | str | os.PathLike[str],
    executor: Executor | None = None,
    *,
    raise_on_failure: bool = True,
    progress: bool = False,
) -> SweepReport:
    """Expand ``spec`` and run it into ``store`` with resume (see :func:`run_runs`)."""
    return run_runs(
        spec.expand(),
        store,
        executor,
        raise_on_failure=raise_on_failure,
        progress=progress,
        description=spec.name,
    )
