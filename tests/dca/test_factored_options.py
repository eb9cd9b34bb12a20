"""FactoredDCA options: the factor L2 (``factor_l2``), its conversion and validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnpotts.dca import FactoredDCA, Regularization
from attnpotts.errors import ValidationError
from attnpotts.inference.objectives import masked_cross_entropy


def _data(L: int = 5, q: int = 3, M: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    states = rng.integers(0, q, (M, L))
    states[:, 3] = states[:, 0]  # one strong pair so the fit has something to learn
    return states, rng.uniform(0.5, 1.5, M)


def test_factor_l2_enters_the_objective_in_attentiondca_mean_form() -> None:
    """final_objective * L == sum_i mean-CE_i + factor_l2 ||theta||^2 + L * (J and h terms)."""
    states, w = _data()
    L, q = states.shape[1], 3
    reg = Regularization("plmc", 0.02, 0.01)
    est = FactoredDCA(n_heads=2, key_dim=3, max_iter=8, init_std=0.5, factor_l2=0.3,
                      regularization=reg, dtype="float64", seed=3).fit(states, w)
    assert est.weight_decay_ == pytest.approx(2 * 0.3 / L)
    model = est.model_
    tokens = torch.as_tensor(states, dtype=torch.long)
    wt = torch.as_tensor(w, dtype=torch.float64)
    with torch.no_grad():
        ce = float(masked_cross_entropy(model.logits(tokens), tokens, None, wt, reduction="mean"))
        theta2 = sum(float((p.double() ** 2).sum()) for p in model.factor_parameters())
        J2 = float((model.coupling_tensor().double() ** 2).sum())
        h2 = float((model.field_tensor().double() ** 2).sum())
    cl2, fl2 = reg.per_token(L, q, float(w.sum()))
    mean_form = L * ce + 0.3 * theta2 + L * (0.5 * cl2 * J2 + 0.5 * fl2 * h2)
    assert L * est.convergence_.final_objective == pytest.approx(mean_form, rel=1e-6)
    record = est.regularization_["factor_l2"]
    assert record["given"] == 0.3 and record["training_loop_weight_decay"] == pytest.approx(0.12)


def test_factor_l2_shrinks_the_factors() -> None:
    states, w = _data(seed=1)
    norms = []
    for lam in (0.0, 1.0):
        est = FactoredDCA(n_heads=2, key_dim=3, max_iter=15, init_std=0.5, factor_l2=lam,
                          dtype="float64", seed=2).fit(states, w)
        norms.append(sum(float((p.detach() ** 2).sum()) for p in est.model_.factor_parameters()))
    assert norms[1] < 0.5 * norms[0]


@pytest.mark.parametrize(
    ("options", "name"),
    [({"factor_l2": -1e-3}, "factor_l2"), ({"factor_l2": float("nan")}, "factor_l2"),
     ({"init_std": -0.1}, "init_std"), ({"n_heads": 0}, "n_heads"), ({"key_dim": 0}, "key_dim"),
     ({"variant": "linear"}, "variant")],
)
def test_bad_factored_options_name_the_option(options: dict, name: str) -> None:
    states, w = _data()
    with pytest.raises(ValidationError, match=name):
        FactoredDCA(**options).fit(states, w)
