"""The training loop: determinism, exact resume, masking, weights, early stopping, divergence."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from attnpotts.errors import DivergenceError, ShapeError, ValidationError
from attnpotts.inference import mlm_loss
from attnpotts.models import FactoredAttention, FullPotts, TransformerEncoder, build_model
from attnpotts.potts import ExactPotts, PottsModel
from attnpotts.training import (
    Callback,
    MaskingPolicy,
    ProgressBar,
    TrainingConfig,
    load_checkpoint,
    load_model,
    train,
)

L, Q = 5, 3
F64 = torch.float64


def _data(m: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(123)
    site = rng.normal(size=(L, L))
    site = (site + site.T) / 2
    np.fill_diagonal(site, 0)
    colour = rng.normal(size=(Q, Q))
    true = PottsModel.from_factors(site, colour + colour.T, beta=0.7)
    return ExactPotts(true).sample(m, seed=seed)


TRAIN = _data(200, 1)
VALID = _data(100, 2)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("factored", {"n_heads": 2}, {"masking": "all", "batch_size": 64, "learning_rate": 0.05}),
    (
        "factored",
        {"variant": "softmax"},
        {"masking": "one", "batch_size": 50, "optimizer": "adamw", "weight_decay": 1e-3},
    ),
    (
        "potts",
        {},
        {"optimizer": "lbfgs", "lbfgs_max_iter": 5, "coupling_l2": 1e-3, "field_l2": 1e-3},
    ),
    (
        "transformer",
        {"width": 8, "n_heads": 2, "dropout": 0.1},
        {"masking": "bert", "mask_rate": 0.3, "batch_size": 64, "learning_rate": 3e-3},
    ),
]


@pytest.mark.parametrize(
    ("kind", "mkw", "tkw"), CASES, ids=[c[0] + "-" + str(i) for i, c in enumerate(CASES)]
)
def test_resume_equals_uninterrupted_run_bitwise(
    tmp_path: Path, kind: str, mkw: dict, tkw: dict
) -> None:
    def fresh() -> torch.nn.Module:
        return build_model(kind, n_sites=L, n_states=Q, seed=5, **mkw)

    full_cfg = TrainingConfig(max_epochs=4, seed=9, **tkw)
    full = fresh()
    res_full = train(
        full, TRAIN, config=full_cfg, validation=VALID, checkpoint_path=tmp_path / "a.pt"
    )

    part = fresh()
    ck = tmp_path / "b.pt"
    log = tmp_path / "b.jsonl"
    train(
        part,
        TRAIN,
        config=TrainingConfig(max_epochs=2, seed=9, **tkw),
        validation=VALID,
        checkpoint_path=ck,
        metrics_path=log,
    )
    resumed = fresh()
    res = train(
        resumed,
        TRAIN,
        config=full_cfg,
        validation=VALID,
        resume_from=ck,
        checkpoint_path=ck,
        metrics_path=log,
    )
    _assert_same(_state(full), _state(resumed))
    assert res.epochs == res_full.epochs == 4
    assert [r["train_loss"] for r in res.history] == [r["train_loss"] for r in res_full.history]
    assert [r["validation_loss"] for r in res.history] == [
        r["validation_loss"] for r in res_full.history
    ]
    lines = log.read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3, 4]


def test_same_seed_same_result_other_seed_differs() -> None:
    cfg = {"max_epochs": 2, "masking": "one", "batch_size": 32}
    runs = []
    for seed in (1, 1, 2):
        m = FactoredAttention(L, Q, 2, seed=0)
        train(m, TRAIN, config=TrainingConfig(seed=seed, **cfg))
        runs.append(_state(m))
    _assert_same(runs[0], runs[1])
    assert not torch.equal(runs[0]["value"], runs[2]["value"])


def test_training_lowers_the_loss_and_reports_final_losses() -> None:
    m = FullPotts(L, Q, dtype=F64)
    before = mlm_loss(m, TRAIN)
    res = train(m, TRAIN, config=TrainingConfig(optimizer="lbfgs", max_epochs=3), validation=VALID)
    assert res.final_train_loss == pytest.approx(mlm_loss(m, TRAIN), rel=1e-12)
    assert res.final_train_loss < before - 0.05
    assert res.final_validation_loss == pytest.approx(mlm_loss(m, VALID), rel=1e-12)
    assert res.stop_reason == "max_epochs"
    assert len(res.history) == 3 and res.history[-1]["steps"] > 3


def test_sequence_weights_equal_duplicated_sequences() -> None:
    uniq, counts = np.unique(TRAIN, axis=0, return_counts=True)
    cfg = TrainingConfig(optimizer="lbfgs", max_epochs=2, lbfgs_max_iter=10)
    a = FullPotts(L, Q, dtype=F64, init_std=0.1)
    b = FullPotts(L, Q, dtype=F64, init_std=0.1)
    assert mlm_loss(a, uniq, counts) == pytest.approx(mlm_loss(a, TRAIN), rel=1e-13)
    train(a, uniq, weights=counts, config=cfg)
    train(b, TRAIN, config=cfg)
    torch.testing.assert_close(a.couplings, b.couplings, rtol=1e-6, atol=1e-8)


def test_early_stopping_restores_the_best_epoch(tmp_path: Path) -> None:
    small = TRAIN[:15]
    m = FullPotts(L, Q, dtype=F64)
    cfg = TrainingConfig(max_epochs=300, learning_rate=0.1, batch_size=None, patience=3)
    res = train(m, small, config=cfg, validation=VALID, checkpoint_path=tmp_path / "c.pt")
    assert res.stop_reason == "early_stopping"
    assert res.best_epoch is not None and res.best_epoch == res.epochs - 3
    vals = [r["validation_loss"] for r in res.history]
    assert res.best_validation_loss == min(vals)
    assert mlm_loss(m, VALID) == pytest.approx(res.best_validation_loss, rel=1e-12)
    # the checkpoint rebuilds the final (best) model and keeps the last training state apart
    best = load_model(tmp_path / "c.pt")
    _assert_same(_state(best), _state(m))
    last = load_model(tmp_path / "c.pt", which="last")
    assert mlm_loss(last, VALID) > mlm_loss(best, VALID)


class _Poison(Callback):
    """Sets a parameter to NaN after ``at`` epochs: the next epoch must diverge."""

    def __init__(self, model: torch.nn.Module, at: int) -> None:
        self.model, self.at = model, at
        self.saved: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, record: dict[str, Any]) -> bool | None:
        if record["epoch"] == self.at:
            self.saved = _state(self.model)
            with torch.no_grad():
                next(self.model.parameters()).fill_(float("nan"))
        return None


def test_divergence_stops_cleanly_keeping_the_last_good_state(tmp_path: Path) -> None:
    m = FactoredAttention(L, Q, seed=1)
    poison = _Poison(m, at=2)
    ck = tmp_path / "d.pt"
    res = train(
        m, TRAIN, config=TrainingConfig(max_epochs=10), callbacks=[poison], checkpoint_path=ck
    )
    assert res.stop_reason == "diverged" and res.epochs == 2
    assert "epoch 3" in res.message
    assert poison.saved is not None
    _assert_same(_state(m), poison.saved)
    _assert_same(_state(load_model(ck)), poison.saved)
    assert load_checkpoint(ck)["epoch"] == 2
    m2 = FactoredAttention(L, Q, seed=1)
    with pytest.raises(DivergenceError, match="restored"):
        train(
            m2,
            TRAIN,
            config=TrainingConfig(max_epochs=10),
            callbacks=[_Poison(m2, 1)],
            raise_on_divergence=True,
        )
    assert all(torch.isfinite(p).all() for p in m2.parameters())


class _Blow(Callback):
    """Scales the couplings by 1000 after epoch 1: finite, but far above the first epoch's loss."""

    def __init__(self, model: FullPotts) -> None:
        self.model = model

    def on_epoch_end(self, record: dict[str, Any]) -> bool | None:
        if record["epoch"] == 1:
            with torch.no_grad():
                self.model.couplings.normal_(generator=torch.Generator().manual_seed(0)).mul_(1000)
        return None


def test_loss_blowing_up_counts_as_divergence() -> None:
    m = FullPotts(L, Q, seed=0)
    cfg = TrainingConfig(max_epochs=20, learning_rate=1e-4, divergence_factor=5.0)
    res = train(m, TRAIN, config=cfg, callbacks=[_Blow(m)])
    assert res.stop_reason == "diverged" and res.epochs == 1
    assert np.isfinite(res.final_train_loss) and res.final_train_loss < 2.0


def test_a_penalised_lbfgs_fit_from_a_memorising_start_is_not_called_diverged() -> None:
    """From a start fitted without penalty to a few rows, the penalised fit's data term rises
    tenfold while L-BFGS lowers the objective (data + penalty): only non-finite numbers stop an
    L-BFGS fit."""
    few = TRAIN[:8]
    m = FullPotts(L, Q, symmetric=True, dtype=F64)
    base = {"optimizer": "lbfgs", "learning_rate": 1.0, "batch_size": None, "masking": "all"}
    train(m, few, config=TrainingConfig(**base, max_epochs=1, lbfgs_max_iter=100))  # memorise
    cfg = TrainingConfig(**base, max_epochs=4, lbfgs_max_iter=5, coupling_l2=0.05)
    res = train(m, few, config=cfg)  # the warm start, now penalised
    data = [r["train_loss"] for r in res.history]
    objective = [r["objective"] for r in res.history]
    assert res.stop_reason != "diverged" and res.epochs == 4
    assert max(data) > 10 * data[0]  # the old bound on the data term would have stopped it
    assert all(b <= a for a, b in itertools.pairwise(objective))
    # a non-finite parameter still stops it, with the last good state restored
    m2 = FullPotts(L, Q, symmetric=True, dtype=F64)
    poison = _Poison(m2, at=1)
    res2 = train(m2, few, config=cfg, callbacks=[poison])
    assert res2.stop_reason == "diverged" and "not finite" in res2.message
    assert poison.saved is not None
    _assert_same(_state(m2), poison.saved)


def test_masking_policies() -> None:
    tokens = torch.as_tensor(TRAIN[:50])
    gen = torch.Generator().manual_seed(0)
    inputs, predict = MaskingPolicy("one").draw(tokens, Q, gen)
    assert torch.equal(predict.sum(1), torch.ones(50, dtype=torch.long))
    assert torch.all(inputs[predict] == Q) and torch.equal(inputs[~predict], tokens[~predict])
    _, again = MaskingPolicy("one").draw(tokens, Q, gen)
    assert not torch.equal(predict, again)  # redrawn on every visit
    big = torch.zeros(2000, 50, dtype=torch.long)
    _, p = MaskingPolicy("bert", 0.2).draw(big, Q, gen)
    rate = p.double().mean().item()
    assert abs(rate - 0.2) < 5 * np.sqrt(0.2 * 0.8 / p.numel())
    with pytest.raises(ValidationError, match="masking"):
        MaskingPolicy("some")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="rate"):
        MaskingPolicy("bert", 0.0)


def test_one_mask_loss_is_an_unbiased_estimate_of_the_all_positions_loss() -> None:
    """Averaged over the L equally likely positions, the one-mask loss is the PL loss exactly."""
    m = FactoredAttention(L, Q, 2, dtype=F64, init_std=0.5)
    tokens = torch.as_tensor(TRAIN[:40])
    from attnpotts.inference import masked_cross_entropy

    per_pos = []
    for i in range(L):
        masked = tokens.clone()
        masked[:, i] = Q
        predict = torch.zeros_like(tokens, dtype=torch.bool)
        predict[:, i] = True
        per_pos.append(masked_cross_entropy(m(masked), tokens, predict).item())
    assert np.mean(per_pos) == pytest.approx(mlm_loss(m, TRAIN[:40]), rel=1e-12)


def test_progress_bar_runs(capsys: pytest.CaptureFixture[str]) -> None:
    train(
        FactoredAttention(L, Q),
        TRAIN,
        config=TrainingConfig(max_epochs=2),
        callbacks=[ProgressBar()],
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"states": np.zeros((0, L), dtype=int)}, ValidationError, "empty"),
        ({"states": np.full((4, L), Q)}, ValidationError, r"0\.\.2"),
        ({"states": np.zeros((4, L + 1), dtype=int)}, ShapeError, "length 6"),
        ({"states": np.zeros((4, L))}, ValidationError, "integer"),
        ({"weights": np.ones(3)}, ShapeError, "one per sequence"),
        ({"weights": -np.ones(len(TRAIN))}, ValidationError, "non-negative"),
        ({"validation": np.zeros((3, 2), dtype=int)}, ShapeError, "validation states"),
        ({"validation_weights": np.ones(3)}, ValidationError, "without validation"),
        ({"config": TrainingConfig(patience=2)}, ValidationError, "needs validation"),
    ],
)
def test_bad_training_inputs(kwargs: dict, error: type, match: str) -> None:
    args: dict[str, Any] = {"states": TRAIN, **kwargs}
    states = args.pop("states")
    with pytest.raises(error, match=match):
        train(FactoredAttention(L, Q), states, **args)


def test_coupling_l2_refused_for_transformer() -> None:
    with pytest.raises(ValidationError, match="weight_decay instead"):
        train(
            TransformerEncoder(L, Q, width=8, n_heads=2),
            TRAIN,
            config=TrainingConfig(coupling_l2=0.1),
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "sgd"}, "optimizer"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"masking": "half"}, "masking"),
        ({"divergence_factor": 1.0}, "divergence_factor"),
    ],
)
def test_bad_config(kwargs: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        TrainingConfig(**kwargs)


def test_config_dict_roundtrip_and_unknown_keys() -> None:
    cfg = TrainingConfig(optimizer="lbfgs", patience=3)
    assert TrainingConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValidationError, match="unknown training option"):
        TrainingConfig.from_dict({"lr": 1.0})


def test_resume_refuses_a_different_run(tmp_path: Path) -> None:
    ck = tmp_path / "e.pt"
    train(FactoredAttention(L, Q), TRAIN, config=TrainingConfig(max_epochs=1), checkpoint_path=ck)
    with pytest.raises(ValidationError, match="learning_rate"):
        train(
            FactoredAttention(L, Q),
            TRAIN,
            config=TrainingConfig(max_epochs=2, learning_rate=1.0),
            resume_from=ck,
        )
    with pytest.raises(ValidationError, match="n_heads"):
        train(
            FactoredAttention(L, Q, 2), TRAIN, config=TrainingConfig(max_epochs=2), resume_from=ck
        )
    with pytest.raises(ValidationError, match="sequences"):
        train(
            FactoredAttention(L, Q), TRAIN[:10], config=TrainingConfig(max_epochs=2), resume_from=ck
        )
    with pytest.raises(FileNotFoundError):
        train(FactoredAttention(L, Q), TRAIN, resume_from=tmp_path / "nope.pt")


def test_weight_decay_penalty_is_reported() -> None:
    m = FactoredAttention(L, Q, dtype=F64)
    res = train(m, TRAIN, config=TrainingConfig(max_epochs=1, weight_decay=0.1, coupling_l2=0.2))
    from attnpotts.inference import coupling_penalty, factor_penalty

    expected = 0.05 * factor_penalty(m).item() + 0.1 * coupling_penalty(m).item()
    assert res.history[-1]["penalty"] == pytest.approx(expected, rel=1e-10)


@pytest.mark.gpu
def test_training_on_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    for kind in ("factored", "potts", "transformer"):
        m = build_model(kind, n_sites=L, n_states=Q, device="cuda")
        res = train(m, TRAIN, config=TrainingConfig(max_epochs=2, masking="one"), validation=VALID)
        assert np.isfinite(res.final_train_loss)


@pytest.mark.parametrize("kind", ["factored", "potts", "transformer"])
def test_all_positions_training_loss_is_the_pseudo_likelihood_loss(kind: str) -> None:
    """With masking 'all' and one full batch, the epoch's loss is the exact all-positions loss."""
    kw = {"width": 8, "n_heads": 2} if kind == "transformer" else {"init_std": 0.3}
    m = build_model(kind, n_sites=L, n_states=Q, dtype=F64, **kw)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(TRAIN))
    before = mlm_loss(m, TRAIN, w)
    res = train(m, TRAIN, weights=w, config=TrainingConfig(max_epochs=1, batch_size=None))
    assert res.history[0]["train_loss"] == pytest.approx(before, rel=1e-12)


def test_iteration_progress_counts_across_the_epochs_of_a_fit() -> None:
    """plm runs epochs of a few L-BFGS iterations (its convergence rule checks after each): the
    progress counts iterations across them, against the cap, and ends at the fit's count."""
    import io

    from attnpotts.dca import PlmDCA
    from attnpotts.training import IterationProgress

    rng = np.random.default_rng(3)
    states = rng.integers(0, 4, size=(60, 6))
    stream = io.StringIO()
    fit = PlmDCA(max_iter=12, check_every=4, tolerance=1e-12).fit(
        states, callbacks=[IterationProgress("fit", stream=stream, interval_s=0.0, bar=False)]
    )
    counts = [line.split(": ", 1)[1].split(" ", 1)[0] for line in stream.getvalue().splitlines()]
    done = [int(c.split("/")[0]) for c in counts]
    assert {c.split("/")[1] for c in counts} == {"12"}  # 3 epochs of 4: the cap
    assert done == sorted(done) and len(set(done)) == len(done), counts  # never restarts at 1
    assert done[-1] == fit.convergence_.iterations == 12
