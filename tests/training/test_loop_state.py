"""The loop state and its callbacks: checkpoints of earlier versions resume bit for bit, the
state round-trips through a checkpoint, and callbacks see and steer the state."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from attnpotts.models import build_model
from attnpotts.training import (
    Callback,
    ConvergenceStop,
    EarlyStopping,
    LoopState,
    TrainingConfig,
    load_checkpoint,
    train,
)
from attnpotts.training.checkpoint import _RESUME_KEYS

DATA = Path(__file__).parent / "data"
L, Q = 5, 3

#: Checkpoints in ``data/`` written after 2 of 4 epochs by attnpotts before the loop state
#: existed (commit 8a66268), with these models and options, seed 9, on ``checkpoint_data.npz``.
OLD_RUNS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "transformer": (
        "transformer",
        {"width": 8, "n_heads": 2, "dropout": 0.1},
        {"masking": "one", "batch_size": 64, "learning_rate": 3e-3, "patience": 10,
         "warmup_epochs": 1},
    ),
    "potts_lbfgs": (
        "potts",
        {},
        {"optimizer": "lbfgs", "lbfgs_max_iter": 5, "coupling_l2": 1e-3, "field_l2": 1e-3,
         "patience": 10},
    ),
}  # fmt: skip


def _data() -> tuple[np.ndarray, np.ndarray]:
    with np.load(DATA / "checkpoint_data.npz") as z:
        return z["train"].astype(np.int64), z["validation"].astype(np.int64)


def _states(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _resume(name: str, old: Path, tmp: Path, max_epochs: int, checkpoint: str) -> tuple[Any, Any]:
    """``(model, result)`` of a run resumed from ``old`` up to ``max_epochs``."""
    kind, mkw, tkw = OLD_RUNS[name]
    train_states, valid = _data()
    model = build_model(kind, n_sites=L, n_states=Q, seed=5, **mkw)
    res = train(
        model, train_states, config=TrainingConfig(max_epochs=max_epochs, seed=9, **tkw),
        validation=valid, resume_from=old, checkpoint_path=tmp / checkpoint,
        metrics_path=tmp / f"{checkpoint}.jsonl",
    )
    return model, res


@pytest.mark.parametrize("name", sorted(OLD_RUNS))
def test_checkpoint_of_an_earlier_version_resumes_bit_for_bit(name: str, tmp_path: Path) -> None:
    """A checkpoint of an earlier attnpotts resumes to the same result, bit for bit, as the
    uninterrupted run.

    The stored checkpoints were written on one CPU; another CPU (or its math library) rounds
    the first two epochs differently, so there the uninterrupted run passes through another
    state. Where this machine reproduces the stored epoch-2 parameters exactly, the resumed
    run must equal the uninterrupted one bit for bit; elsewhere it must equal, bit for bit, the
    run resumed from the same state written again by this version (so every part of the old
    state, the optimiser's and the random generators' included, is read as this version reads
    its own), and stay close to the uninterrupted run.
    """
    kind, mkw, tkw = OLD_RUNS[name]
    train_states, valid = _data()
    config = TrainingConfig(max_epochs=4, seed=9, **tkw)
    full = build_model(kind, n_sites=L, n_states=Q, seed=5, **mkw)
    res_full = train(full, train_states, config=config, validation=valid)
    half = build_model(kind, n_sites=L, n_states=Q, seed=5, **mkw)
    train(half, train_states, config=TrainingConfig(max_epochs=2, seed=9, **tkw), validation=valid)

    old = tmp_path / "old.pt"
    old.write_bytes((DATA / f"{name}.pt").read_bytes())
    stored = load_checkpoint(old, resume=True)
    assert stored["epoch"] == 2
    resumed, res = _resume(name, old, tmp_path, 4, "new.pt")
    assert res.epochs == res_full.epochs == 4
    log = tmp_path / "new.pt.jsonl"
    assert [json.loads(x)["epoch"] for x in log.read_text().splitlines()] == [1, 2, 3, 4]
    same_machine = all(torch.equal(v, stored["model_state"][k]) for k, v in _states(half).items())
    if same_machine:
        reference, res_ref = full, res_full
    else:  # the same epoch-2 state, written and read back by this version
        _resume(name, old, tmp_path, 2, "again.pt")
        reference, res_ref = _resume(name, tmp_path / "again.pt", tmp_path, 4, "ref.pt")
        for k, v in _states(full).items():  # rounding, grown over two epochs: a few % at most
            assert float(torch.linalg.norm(_states(resumed)[k] - v)) <= 0.05 * float(torch.linalg.norm(v)), k
        assert res.history[-1]["train_loss"] == pytest.approx(res_full.history[-1]["train_loss"], rel=1e-2)
    for k, v in _states(reference).items():
        assert torch.equal(v, _states(resumed)[k]), k
    for key in ("train_loss", "validation_loss", "penalty", "steps", "tokens_seen"):
        assert [r[key] for r in res.history] == [r[key] for r in res_ref.history], key
    assert res.best_epoch == res_ref.best_epoch
    assert res.best_validation_loss == res_ref.best_validation_loss


def test_state_payload_holds_every_resume_key_and_round_trips() -> None:
    gen, dgen = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    torch.rand(3, generator=gen)  # move the generator away from its seed
    state = LoopState(gen, dgen, epoch=3, steps=12, tokens_seen=40, elapsed=1.5, cpu_elapsed=2.5,
                      history=[{"epoch": 1, "train_loss": math.nan}], reference=1.25,
                      best_loss=0.75, best_epoch=2, best_state={"w": torch.ones(2)}, since_best=1)  # fmt: skip
    payload = state.payload()
    run_keys = {"optimizer_state", "n_train", "training_config"}  # the checkpoint adds these
    assert set(_RESUME_KEYS) - run_keys <= set(payload)
    back = LoopState(torch.Generator(), torch.Generator())
    back.restore(payload)
    assert back.resumed and not state.resumed
    for f in ("epoch", "steps", "tokens_seen", "elapsed", "cpu_elapsed", "reference", "best_loss",
              "best_epoch", "since_best"):  # fmt: skip
        assert getattr(back, f) == getattr(state, f), f
    assert back.history == [{"epoch": 1, "train_loss": None}]  # strict JSON: NaN -> null
    assert back.best_state is not None and torch.equal(back.best_state["w"], torch.ones(2))
    assert torch.equal(back.shuffle_generator.get_state(), gen.get_state())
    assert torch.equal(back.dropout_generator.get_state(), dgen.get_state())


def _state_with(losses: list[tuple[float, float | None]]) -> LoopState:
    state = LoopState(torch.Generator(), torch.Generator())
    for i, (train_loss, val) in enumerate(losses, 1):
        state.epoch = i
        state.history.append({"epoch": i, "train_loss": train_loss, "validation_loss": val})
    return state


def test_early_stopping_tracks_the_best_epoch_and_counts_patience() -> None:
    model = build_model("factored", n_sites=L, n_states=Q)
    stop = EarlyStopping(model, patience=2, min_delta=0.01)
    state = _state_with([])
    reasons = []
    for i, val in enumerate([1.0, 0.9, 0.895, 0.95], 1):
        state.epoch = i
        state.history.append({"epoch": i, "train_loss": 1.0, "validation_loss": val})
        reasons.append(stop.on_loop_epoch(state))
    assert reasons == [None, None, None, "early_stopping"]  # 0.895 is not 0.01 below 0.9
    assert (state.best_epoch, state.best_loss, state.since_best) == (2, 0.9, 2)
    assert state.best_state is not None and state.best_state.keys() == model.state_dict().keys()
    tracking = EarlyStopping(model, patience=None)
    assert tracking.on_loop_epoch(_state_with([(1.0, None)])) is None


def test_convergence_stop_on_a_small_relative_change() -> None:
    stop = ConvergenceStop(1e-3)
    assert stop.on_loop_epoch(_state_with([(2.0, None)])) is None
    assert stop.on_loop_epoch(_state_with([(2.0, None), (1.9, None)])) is None
    assert stop.on_loop_epoch(_state_with([(2.0, None), (1.9995, None)])) == "converged"
    assert ConvergenceStop(0.0).on_loop_epoch(_state_with([(2.0, None), (2.0, None)])) is None


def test_a_callback_sees_the_state_and_can_stop_the_run() -> None:
    train_states, valid = _data()

    class StopAtStep(Callback):
        def __init__(self) -> None:
            self.seen: list[tuple[int, int]] = []

        def on_loop_epoch(self, state: LoopState) -> str | None:
            self.seen.append((state.epoch, state.steps))
            return "callback" if state.steps >= 8 else None

    cb = StopAtStep()
    model = build_model("factored", n_sites=L, n_states=Q, seed=1)
    res = train(model, train_states, config=TrainingConfig(max_epochs=10, batch_size=50),
                validation=valid, callbacks=[cb])  # fmt: skip
    assert res.stop_reason == "callback" and res.epochs == 2
    assert cb.seen == [(1, 4), (2, 8)]
