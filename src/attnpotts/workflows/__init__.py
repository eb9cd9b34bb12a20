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

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

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

__getattr__, __dir__ = lazy_attributes(__name__, {
    "ContactsOptions": "_contacts", "contacts": "_contacts",
    "EvaluateOptions": "_evaluate", "evaluate": "_evaluate",
    "SampleOptions": "_sample", "sample": "_sample",
    "TheoryOptions": "_theory", "TheoryRun": "_theory", "theory": "_theory",
    "TrainOptions": "_train", "TrainRun": "_train", "train": "_train",
})  # fmt: skip
