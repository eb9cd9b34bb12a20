"""DCA fits and ``attnpotts contacts`` on a CUDA device agree with the CPU (marked ``gpu``).

On the CPU plm uses the fused numba pass and on CUDA the dense torch kernel; the factored model's
blocked pass runs on either. Same objective, float64, a fixed number of L-BFGS iterations: the
fits must agree to rounding. Run with ``bash scripts/test.sh -m gpu`` on a machine with a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from attnpotts.alignment import example_files
from attnpotts.cli.main import main
from attnpotts.dca import FactoredDCA, PlmDCA, Regularization, device_free_bytes
from attnpotts.potts import ExactPotts, PottsModel

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]
EDGES = [(0, 4), (1, 6), (2, 5), (3, 6)]


def _planted_sample(L: int = 7, q: int = 3, n: int = 3000) -> np.ndarray:
    """``(n, L)`` states drawn exactly from a Potts model with couplings on ``EDGES`` only."""
    rng = np.random.default_rng(11)
    J = np.zeros((L, L, q, q))
    for i, j in EDGES:
        block = rng.normal(0.0, 1.2, (q, q))
        J[i, j], J[j, i] = block, block.T
    exact = ExactPotts(PottsModel(rng.normal(0.0, 0.3, (L, q)), J))
    return exact.states[rng.choice(exact.probabilities.size, size=n, p=exact.probabilities)]


def _fit(model: str, device: str, states: np.ndarray) -> PlmDCA | FactoredDCA:
    common = {"regularization": Regularization("plmc", 0.01, 0.01), "max_iter": 25,
              "tolerance": None, "dtype": "float64", "device": device}
    if model == "plm":
        return PlmDCA(**common).fit(states, np.ones(len(states)))
    return FactoredDCA(n_heads=4, key_dim=4, seed=1, **common).fit(states, np.ones(len(states)))


@pytest.mark.parametrize("model", ["plm", "factored"])
def test_fit_on_cuda_matches_the_cpu(model: str) -> None:
    states = _planted_sample()
    cpu, gpu = _fit(model, "cpu", states), _fit(model, "cuda", states)
    assert gpu.convergence_.iterations == cpu.convergence_.iterations == 25
    assert gpu.convergence_.final_objective == pytest.approx(cpu.convergence_.final_objective,
                                                             rel=1e-9)
    scale = float(np.abs(cpu.couplings_).max())
    np.testing.assert_allclose(gpu.couplings_, cpu.couplings_, rtol=0, atol=1e-6 * scale)
    np.testing.assert_allclose(gpu.fields_, cpu.fields_, rtol=0, atol=1e-6 * scale)
    np.testing.assert_allclose(gpu.scores_, cpu.scores_, rtol=1e-6, atol=1e-9)
    iu = np.triu_indices(states.shape[1], k=1)
    top = np.argsort(-gpu.scores_[iu])[: len(EDGES)]
    assert {(int(iu[0][k]), int(iu[1][k])) for k in top} == set(EDGES)


@pytest.mark.parametrize("model", ["plm", "factored"])
def test_contacts_command_on_cuda(model: str, tmp_path: Path) -> None:
    """The default command on the shipped PF00014, on CUDA: the CPU's precision within a contact."""
    ex = example_files("PF00014")
    args = ["contacts", str(ex.alignment), "--distances", str(ex.distances), "--model", model]
    assert main([*args, "--device", "cuda", "--out", str(tmp_path / "gpu")]) == 0
    assert main([*args, "--out", str(tmp_path / "cpu")]) == 0
    got, ref = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("gpu", "cpu"))
    assert got["n_sites"] == ref["n_sites"] == 53
    assert abs(got["precision"]["L"] - ref["precision"]["L"]) <= 1 / 53 + 1e-12
    assert got["precision"]["L"] >= 0.9


def test_the_free_memory_of_the_device_is_read() -> None:
    """What the fits' memory check compares the estimate with (``dca.memory``)."""
    free = device_free_bytes("cuda")
    assert free is not None and 0 < free <= torch.cuda.get_device_properties(0).total_memory


def test_factored_fit_device_memory_is_within_its_estimate() -> None:
    """The part of the estimate a CUDA fit is refused by (all but the host parts) against the
    device memory a factored fit allocates: at least the peak, at most 1.5 times it."""
    from attnpotts.dca import prepare_data

    rng = np.random.default_rng(0)
    N, L = 3000, 400  # the matrix-product pass in two blocks of J (256 MiB each)
    data = prepare_data(rng.integers(0, 21, size=(N, L)).astype(np.int8), np.ones(N), n_states=21)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fit = FactoredDCA(n_heads=8, max_iter=2, tolerance=None, device="cuda").fit(data)
    peak = torch.cuda.max_memory_allocated() - base
    assert peak <= fit.memory_estimate_.device_bytes <= 1.5 * peak
