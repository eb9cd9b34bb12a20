"""What every stage works with: the pipeline's context (config, store, executor) and its output.

A stage asks the context for the stored runs of a spec (:meth:`StageContext.results`): the context
runs what is missing as one sweep through the results store (so a killed pipeline resumes) and
keeps the loaded runs for the later stages; the stage turns them into a summary and figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import ReproduceConfig
from ..executors import Executor
from ..spec import ExperimentSpec, RunSpec
from ..store import ResultsStore, StoredRun
from ..sweep import SweepReport, run_runs
from .eta import Eta

__all__ = ["StageContext", "StageOutput"]


@dataclass
class StageOutput:
    """What a stage produced: a JSON summary, PNG figures and the runs it used."""

    summary: dict[str, Any]
    figures: dict[str, bytes] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)


@dataclass
class StageContext:
    """The pipeline's settings, results store and executor, and the runs loaded so far."""

    config: ReproduceConfig
    store: ResultsStore
    executor: Executor
    progress: bool
    cache: dict[str, list[StoredRun]] = field(default_factory=dict)
    sweeps: list[dict[str, Any]] = field(default_factory=list)
    eta: Eta | None = None

    def run(self, *specs: ExperimentSpec, first: Callable[[RunSpec], float] | None = None) -> None:
        """Run the specs not run yet in this pipeline as one sweep (one pool of workers, so a
        worker's memoised data set serves every run), submitting in ``first``-descending order
        (longest first keeps the workers busy; results do not depend on the order)."""
        todo = [s for s in specs if s.name not in self.cache]
        if not todo:
            return
        runs = [r for s in todo for r in s.expand()]
        if first is not None:
            runs.sort(key=first, reverse=True)
        report: SweepReport = run_runs(
            runs, self.store, self.executor, progress=self.progress,
            description="+".join(s.name for s in todo),
            on_result=None if self.eta is None else self.eta.update,
        )  # fmt: skip
        self.sweeps.append({"experiment": "+".join(s.name for s in todo), **report.summary()})
        for s in todo:
            self.cache[s.name] = [self.store.load(r) for r in s.expand()]

    def results(self, spec: ExperimentSpec) -> list[StoredRun]:
        """Run ``spec`` (resuming) once per pipeline and return its stored runs in order."""
        self.run(spec)
        return self.cache[spec.name]


