"""One library function per command: typed options in, a result object out.

=============  =================================  ===========================================
command        options                            function (result)
=============  =================================  ===========================================
``sample``     :class:`SampleOptions`             :func:`sample` (``SampledDataset``)
``train``      :class:`TrainOptions`              :func:`train` (:class:`TrainRun`)
``evaluate``   :class:`EvaluateOptions`           :func:`evaluate` (summary dict)
``theory``     :class:`TheoryOptions`             :func:`theory` (:class:`TheoryRun`)
``contacts``   :class:`ContactsOptions`           :func:`contacts` (summary dict)
=============  =================================  ===========================================

``reproduce`` is :func:`attnpotts.experiments.reproduce` with
:class:`attnpotts.experiments.ReproduceConfig` (its stages run the tasks of
``experiments/tasks.py``, which call the functions here). The command line only parses flags and
``--config`` files into these options, calls the function and prints; the Python API is the same
call, e.g. ``attnpotts.workflows.train(TrainOptions(data="runs/sample"), "runs/fa")``.

Submodules are imported on first use, so that ``import attnpotts.workflows`` stays light (the
``sample`` and ``theory`` workflows do not load torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._contacts import ContactsOptions, contacts
    from ._evaluate import EvaluateOptions, evaluate
    from ._sample import SampleOptions, sample
    from ._theory import TheoryOptions, TheoryRun, theory
    from ._train import TrainOptions, TrainRun, train

__all__ = [
    "ContactsOptions",
    "EvaluateOptions",
    "SampleOptions",
    "TheoryOptions",
    "TheoryRun",
    "TrainOptions",
    "TrainRun",
    "contacts",
    "evaluate",
    "sample",
    "theory",
    "train",
]

_WHERE = {
    "ContactsOptions": "contacts", "contacts": "contacts",
    "EvaluateOptions": "evaluate", "evaluate": "evaluate",
    "SampleOptions": "sample", "sample": "sample",
    "TheoryOptions": "theory", "TheoryRun": "theory", "theory": "theory",
    "TrainOptions": "train", "TrainRun": "train", "train": "train",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'attnpotts.workflows' has no attribute {name!r}")
    return getattr(importlib.import_module(f"attnpotts.workflows._{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
