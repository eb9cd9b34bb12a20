"""``attnpotts reproduce``: the paper's experiments as one pipeline of sweeps, a JSON document and a report.

Stages (``docs/experiments.md``; each is a sweep of registered tasks run through the results store, so
a killed pipeline resumes where it stopped and any executor gives the same numbers):

* ``depth`` - test loss against training compute (process CPU seconds) for vanilla transformers
  with 1..4 layers and one factored layer on synthetic generalized-Potts data (``L = q = 20``,
  the paper's ``M = 3000``; transformer width 32 by default, so that every run converges within
  about 15 minutes on 2 cores; ``--full``: width 64), each regularised (a grid,
  the value chosen on a validation set distinct from the test set) and trained until early stopping
  on that validation set, 2 training seeds; the optimal loss (mean conditional entropy of the true
  model) with standard errors; the smallest depth within ``match_tolerance`` (1%) of the factored
  layer's test loss, or none.
* ``scaling`` - learning curves in the number of training sequences ``M``: excess test loss over
  the true model, mean ± s.e. over data sets, with fitted power-law slopes.
* ``couplings`` - the learned attention ``A`` and value ``V`` of the factored layer next to the true
  ``Jsite`` and ``Ucol``, with gauge-invariant correlations.
* ``theory`` - replica learning curves (``docs/theory.md``) against finite-``N`` simulations.
* ``equivalence`` - the MLM loss of factored attention and ``-(1/(M L)) log PL`` of the converted
  Potts model, for random parameters of both variants and for the trained model.

Everything the report says comes from ``results.json`` (:mod:`attnpotts.reports.reproduce`); the
verdicts on the paper's claims are computed from it by :mod:`attnpotts.experiments.claims`.

Library defaults (documented, not from the paper): the data model of
:class:`attnpotts.sampling.dataset.SampleConfig` (sparse ``Jsite`` of mean degree 3, Gaussian
``Ucol``, beta calibrated to a mean pairwise Hamming distance of 0.88, where the optimal loss is
1-2 nats); transformers with 4 heads trained by AdamW (1 warm-up epoch) on 4 masked copies of
every sequence, each with one different position masked (one masked position per sequence gives
so noisy a validation signal that early stopping fires at a poor loss); factored attention (one
free head with fields) fitted by full-batch L-BFGS on all positions (pseudo-likelihood; Adam's
minibatch noise left a floor in the excess loss: 0.011 nats at both M = 3000 and 10000).

Layout of this package: :mod:`.specs` (what runs), :mod:`.statistics` (selection on validation,
means with standard errors), :mod:`.stages` (one module per stage), :mod:`.context` (what a stage
works with and returns), :mod:`.eta` (run costs and the time left), :mod:`.pipeline`
(:func:`reproduce`: output folder checks, running the stages, the results document). The settings
are :class:`~attnpotts.experiments.config.ReproduceConfig`.
"""

from __future__ import annotations

from ..config import MODES, STAGES, ReproduceConfig
from .context import StageContext, StageOutput
from .eta import estimated_cost
from .pipeline import RESULTS_SCHEMA_ID, ReproduceResult, reproduce
from .specs import (
    data_recipe,
    equivalence_spec,
    factored_spec,
    pipeline_specs,
    scaling_data_seeds,
    scaling_specs,
    theory_alpha_grid,
    theory_curve_spec,
    theory_simulation_spec,
    training_specs,
    transformer_spec,
)
from .stages import EQUIVALENCE_RTOL, STAGE_FUNCTIONS

__all__ = [
    "EQUIVALENCE_RTOL",
    "MODES",
    "RESULTS_SCHEMA_ID",
    "STAGES",
    "STAGE_FUNCTIONS",
    "ReproduceConfig",
    "ReproduceResult",
    "StageContext",
    "StageOutput",
    "data_recipe",
    "equivalence_spec",
    "estimated_cost",
    "factored_spec",
    "pipeline_specs",
    "reproduce",
    "scaling_data_seeds",
    "scaling_specs",
    "theory_alpha_grid",
    "theory_curve_spec",
    "theory_simulation_spec",
    "training_specs",
    "transformer_spec",
]
