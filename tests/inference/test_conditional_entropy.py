"""One conditional-entropy implementation: its three callers give the numbers they gave before.

The pinned values were computed (float64) by the three separate copies that existed before
:func:`attnpotts.potts.conditional_entropies`; the exact-enumeration value is also checked
against an independent identity.
"""

from __future__ import annotations

import numpy as np
import pytest

from attnpotts.inference import optimal_loss
from attnpotts.potts import ExactPotts, PottsModel, conditional_entropies, generalized_potts
from attnpotts.sampling.dataset import _optimal_loss


@pytest.fixture(scope="module")
def model() -> PottsModel:
    return generalized_potts(6, 3, site="dense", beta=1.3, seed=11)


def test_exact_conditional_entropy_is_pinned_and_equals_the_mean_log_conditional(
    model: PottsModel,
) -> None:
    ex = ExactPotts(model)
    assert ex.conditional_entropy() == 0.982213879377791
    # Independent identity: E_s[H(P(. | s_rest))] = E_s[-log P(s_i | s_rest)] under P.
    nll = -np.asarray(model.log_conditionals(ex.states)).mean(axis=1)
    assert ex.conditional_entropy() == pytest.approx(float(ex.probabilities @ nll), rel=1e-12)
    weighted = optimal_loss(model, ex.states, ex.probabilities)
    assert (weighted.mean, weighted.stderr) == (0.9822138793777913, 0.0024475738167336713)


def test_test_set_optimal_loss_is_pinned(model: PottsModel) -> None:
    s = ExactPotts(model).sample(200, seed=5)
    est = optimal_loss(model, s)
    assert (est.mean, est.stderr, est.n) == (0.9861668332601835, 0.0025850093988331636, 200)
    manifest = _optimal_loss(model, s)
    assert manifest["conditional_entropy"] == est.mean
    assert manifest["conditional_entropy_stderr"] == est.stderr
    assert manifest["true_model_test_loss"] == 0.9847282842630994


def test_conditional_entropies_shape_and_bounds(model: PottsModel) -> None:
    s = ExactPotts(model).sample(50, seed=1)
    ent = conditional_entropies(model, s)
    assert ent.shape == (50, 6) and ent.dtype == np.float64
    assert np.all(ent >= 0) and np.all(ent <= np.log(3) + 1e-12)
    # A deterministic conditional (huge coupling) has zero entropy, not NaN.
    hard = PottsModel(None, model.couplings * 1e6, beta=1.0)
    assert np.all(np.isfinite(conditional_entropies(hard, s)))
