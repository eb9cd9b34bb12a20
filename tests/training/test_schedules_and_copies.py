"""Masked copies, the fixed validation set, the learning-rate schedule, stop reasons and the
epoch-cap warning, CPU-time / token accounting, and the progress reporter."""

from __future__ import annotations

import io
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from attnpotts.errors import ValidationError
from attnpotts.inference import masked_cross_entropy, mlm_loss
from attnpotts.models import FactoredAttention, TransformerEncoder, build_model
from attnpotts.potts import ExactPotts, PottsModel
from attnpotts.progress import Progress, format_duration
from attnpotts.training import (
    MaskingPolicy,
    ProgressBar,
    TrainingConfig,
    keep_freed_memory,
    release_freed_memory,
    train,
)

L, Q = 5, 3
F64 = torch.float64


def _data(m: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    site = rng.normal(size=(L, L))
    site = (site + site.T) / 2
    np.fill_diagonal(site, 0)
    colour = rng.normal(size=(Q, Q))
    true = PottsModel.from_factors(site, colour + colour.T, beta=0.8)
    return ExactPotts(true).sample(m, seed=seed)


TRAIN = _data(120, 1)
VALID = _data(60, 2)


def _tf(dtype: torch.dtype = F64, dropout: float = 0.0, **kw: Any) -> TransformerEncoder:
    return TransformerEncoder(L, Q, width=8, n_heads=2, dropout=dropout, seed=3, dtype=dtype, **kw)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------ masked copies
def test_copies_draw_masks_distinct_positions_one_per_row() -> None:
    tokens = torch.as_tensor(TRAIN[:30])
    gen = torch.Generator().manual_seed(0)
    inputs, predict = MaskingPolicy("copies", n_copies=3).draw(tokens, Q, gen)
    assert inputs.shape == predict.shape == (90, L)
    assert torch.equal(predict.sum(1), torch.ones(90, dtype=torch.long))
    targets = tokens.repeat_interleave(3, dim=0)
    assert torch.all(inputs[predict] == Q) and torch.equal(inputs[~predict], targets[~predict])
    pos = predict.float().argmax(1).reshape(30, 3)
    assert all(len(set(row.tolist())) == 3 for row in pos)  # distinct within a sequence
    # n_copies >= L: every position once, in order, without a random draw
    state = gen.get_state()
    _, full = MaskingPolicy("copies", n_copies=None).draw(tokens, Q, gen)
    assert torch.equal(gen.get_state(), state)
    assert torch.equal(full.float().argmax(1), torch.arange(L).repeat(30))
    assert MaskingPolicy("copies", n_copies=50).copies(L) == L
    with pytest.raises(ValidationError, match="n_mask_copies"):
        MaskingPolicy("copies", n_copies=0)


def test_all_copies_loss_equals_the_all_positions_loss_float64() -> None:
    """L copies, each masking one position, give exactly the pseudo-likelihood loss."""
    m = _tf()
    m.eval()
    tokens = torch.as_tensor(TRAIN[:40])
    inputs, predict = MaskingPolicy("copies").draw(tokens, Q, torch.Generator())
    with torch.no_grad():
        ce = masked_cross_entropy(m(inputs), tokens.repeat_interleave(L, 0), predict)
    assert float(ce) == pytest.approx(mlm_loss(m, TRAIN[:40]), rel=1e-13)


def test_training_with_all_copies_equals_training_with_all_positions() -> None:
    """Full batch, no dropout, float64: the same gradient steps up to summation order."""
    runs = []
    for masking in ("all", "copies"):
        m = _tf()
        cfg = TrainingConfig(max_epochs=3, batch_size=None, masking=masking, learning_rate=1e-2)
        res = train(m, TRAIN, config=cfg)
        runs.append((_state(m), res))
    (a, ra), (b, rb) = runs
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-9, atol=1e-11)
    assert [r["train_loss"] for r in ra.history] == pytest.approx(
        [r["train_loss"] for r in rb.history], rel=1e-12
    )


def test_copies_loss_is_an_unbiased_estimate() -> None:
    m = _tf()
    m.eval()
    tokens = torch.as_tensor(TRAIN)
    gen = torch.Generator().manual_seed(1)
    policy = MaskingPolicy("copies", n_copies=2)
    draws = []
    with torch.no_grad():
        for _ in range(200):
            inputs, predict = policy.draw(tokens, Q, gen)
            draws.append(
                float(masked_cross_entropy(m(inputs), tokens.repeat_interleave(2, 0), predict))
            )
    exact = mlm_loss(m, TRAIN)
    se = np.std(draws) / math.sqrt(len(draws))
    assert abs(np.mean(draws) - exact) < 5 * se


@pytest.mark.parametrize(
    ("masking", "extra", "per_epoch"),
    [("one", {}, 120), ("copies", {"n_mask_copies": 3}, 360), ("all", {}, 120 * L)],
)
def test_tokens_seen_count_masked_targets(masking: str, extra: dict, per_epoch: int) -> None:
    res = train(
        _tf(torch.float32),
        TRAIN,
        config=TrainingConfig(max_epochs=2, batch_size=50, masking=masking, **extra),
    )  # type: ignore[arg-type]
    assert [r["tokens_seen"] for r in res.history] == [per_epoch, 2 * per_epoch]
    assert res.tokens_seen == 2 * per_epoch
    cpu = [r["cpu_s"] for r in res.history]
    assert cpu[0] > 0 and cpu[1] >= cpu[0] and res.cpu_time_s == cpu[-1]


# ------------------------------------------------------------- fixed validation set
def test_fixed_validation_set_is_the_same_every_epoch_and_seeded() -> None:
    cfg = TrainingConfig(max_epochs=3, learning_rate=1e-12, masking="one", validation_positions=1)
    res = train(_tf(), TRAIN, config=cfg, validation=VALID)
    vals = [r["validation_loss"] for r in res.history]
    # a frozen model on a fixed set: the same loss every epoch (redrawn masks would differ)
    assert max(vals) - min(vals) < 1e-9
    assert res.validation_positions == 1
    again = train(_tf(), TRAIN, config=cfg, validation=VALID)
    assert [r["validation_loss"] for r in again.history] == vals
    other = train(
        _tf(), TRAIN, config=TrainingConfig(**{**cfg.to_dict(), "seed": 1}), validation=VALID
    )
    assert abs(other.history[0]["validation_loss"] - vals[0]) > 1e-6
    # the final validation loss is the exact all-positions loss
    assert res.final_validation_loss == pytest.approx(mlm_loss(_tf(), VALID), rel=1e-8)


def test_validation_with_every_position_is_the_exact_loss() -> None:
    cfg = TrainingConfig(
        max_epochs=2, masking="one", validation_positions=L, batch_size=40, restore_best=False
    )
    res = train(_tf(), TRAIN, config=cfg, validation=VALID)
    assert res.validation_positions is None
    assert res.history[-1]["validation_loss"] == pytest.approx(res.final_validation_loss, rel=1e-12)
    auto = train(
        _tf(), TRAIN, config=TrainingConfig(**{**cfg.to_dict(), "validation_positions": None}),
        validation=VALID,
    )  # fmt: skip
    # automatic choice for this tiny set: 0.3 * 120 rows / 60 sequences = 0.6 -> 1 position
    assert auto.validation_positions == 1
    assert auto.history[-1]["validation_loss"] != pytest.approx(
        auto.final_validation_loss, rel=1e-6
    )
    copies = train(
        _tf(), TRAIN, config=TrainingConfig(**{**cfg.to_dict(), "validation_positions": None,
                                              "masking": "copies"}),
        validation=VALID,
    )  # fmt: skip
    # L copies per training sequence: 0.3 * 600 / 60 = 3 positions
    assert copies.validation_positions == 3


def test_structural_models_keep_the_exact_validation_loss() -> None:
    m = FactoredAttention(L, Q, 2, dtype=F64)
    res = train(m, TRAIN, config=TrainingConfig(max_epochs=2, restore_best=False), validation=VALID)
    assert res.validation_positions is None
    assert res.history[-1]["validation_loss"] == pytest.approx(mlm_loss(m, VALID), rel=1e-12)
    # an explicit fixed set reads the unmasked pass at the drawn positions
    res2 = train(
        FactoredAttention(L, Q, 2, dtype=F64), TRAIN,
        config=TrainingConfig(max_epochs=2, validation_positions=2), validation=VALID,
    )  # fmt: skip
    assert res2.validation_positions == 2
    assert res2.history[-1]["validation_loss"] != res.history[-1]["validation_loss"]


# ------------------------------------------------------------- learning-rate schedule
def test_warmup_then_cosine_learning_rate() -> None:
    lr = 1e-2
    cfg = TrainingConfig(
        max_epochs=6, batch_size=30, masking="one", learning_rate=lr, lr_schedule="cosine",
        warmup_epochs=2, min_lr_ratio=0.1,
    )  # fmt: skip
    res = train(_tf(torch.float32), TRAIN, config=cfg)
    steps = 4  # 120 / 30 per epoch; warm-up 8 steps, then 16 cosine steps
    got = [r["learning_rate"] for r in res.history]
    assert got[0] == pytest.approx(lr * 4 / 8)
    assert got[1] == pytest.approx(lr)
    last = 6 * steps - 1 - 8  # the last step's position in the decay
    assert got[-1] == pytest.approx(lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * last / 16))))
    assert got[2] > got[3] > got[4] > got[5] > 0.1 * lr
    const = train(
        _tf(torch.float32), TRAIN,
        config=TrainingConfig(max_epochs=3, batch_size=30, masking="one", learning_rate=lr, warmup_epochs=0.5),
    )  # fmt: skip
    assert [r["learning_rate"] for r in const.history] == [lr, lr, lr]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr_schedule": "linear"}, "lr_schedule"),
        ({"warmup_epochs": -1.0}, "warmup_epochs"),
        ({"min_lr_ratio": 1.5}, "min_lr_ratio"),
        ({"optimizer": "lbfgs", "lr_schedule": "cosine"}, "L-BFGS"),
        ({"optimizer": "lbfgs", "warmup_epochs": 1.0}, "L-BFGS"),
        ({"masking": "copies", "n_mask_copies": 0}, "n_mask_copies"),
        ({"validation_positions": 0}, "validation_positions"),
        ({"still_improving_tol": -1.0}, "still_improving_tol"),
    ],
)
def test_bad_new_options(kwargs: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        TrainingConfig(**kwargs)


def test_resume_with_schedule_and_copies_is_bitwise(tmp_path: Path) -> None:
    tkw: dict[str, Any] = {
        "masking": "copies", "n_mask_copies": 3, "lr_schedule": "cosine", "warmup_epochs": 1.5,
        "optimizer": "adamw", "weight_decay": 1e-2, "batch_size": 50, "learning_rate": 3e-3,
        "patience": 10, "seed": 4,
    }  # fmt: skip

    def fresh() -> torch.nn.Module:
        return build_model(
            "transformer", n_sites=L, n_states=Q, width=8, n_heads=2, dropout=0.1, seed=2
        )

    full = fresh()
    res_full = train(full, TRAIN, config=TrainingConfig(max_epochs=5, **tkw), validation=VALID)
    ck = tmp_path / "r.pt"
    train(
        fresh(),
        TRAIN,
        config=TrainingConfig(max_epochs=2, **tkw),
        validation=VALID,
        checkpoint_path=ck,
    )
    resumed = fresh()
    res = train(
        resumed, TRAIN, config=TrainingConfig(max_epochs=5, **tkw), validation=VALID,
        resume_from=ck, checkpoint_path=ck,
    )  # fmt: skip
    for k, v in _state(full).items():
        assert torch.equal(v, _state(resumed)[k]), k
    for key in ("train_loss", "validation_loss", "learning_rate", "tokens_seen", "steps"):
        assert [r[key] for r in res.history] == [r[key] for r in res_full.history], key
    assert res.tokens_seen == res_full.tokens_seen
    assert res.cpu_time_s >= res.history[1]["cpu_s"]


# ----------------------------------------------------- stop reasons and epoch-cap warning
def test_epoch_cap_warning_when_the_loss_still_falls(caplog: pytest.LogCaptureFixture) -> None:
    cfg = TrainingConfig(max_epochs=4, masking="one", batch_size=30, learning_rate=3e-3, patience=3)
    with caplog.at_level(logging.WARNING, logger="attnpotts.training"):
        res = train(_tf(torch.float32), TRAIN, config=cfg, validation=VALID)
    assert res.stop_reason == "max_epochs"
    assert res.still_improving
    assert len(res.warnings) == 1 and "epoch cap" in res.warnings[0]
    assert "max_epochs = 4" in caplog.text and "has not converged" in caplog.text
    assert "warnings" in res.summary() and res.summary()["still_improving"] is True


def test_no_warning_after_early_stopping_or_on_a_flat_loss(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="attnpotts.training"):
        flat = train(
            _tf(torch.float32), TRAIN,
            config=TrainingConfig(max_epochs=4, masking="one", learning_rate=1e-12),
            validation=VALID,
        )  # fmt: skip
        small = TRAIN[:15]
        m = build_model("potts", n_sites=L, n_states=Q, dtype=F64)
        stopped = train(
            m, small, config=TrainingConfig(max_epochs=300, learning_rate=0.1, batch_size=None, patience=3),
            validation=VALID,
        )  # fmt: skip
    assert flat.stop_reason == "max_epochs" and not flat.still_improving and not flat.warnings
    assert stopped.stop_reason == "early_stopping" and not stopped.still_improving
    assert stopped.best_epoch is not None and stopped.best_epoch <= stopped.epochs - 3
    assert "epoch cap" not in caplog.text


# -------------------------------------------------------------------- progress reporter
class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_plain_progress_lines_at_an_interval_with_eta() -> None:
    out, clock = io.StringIO(), _Clock()
    with Progress(10, "fit", unit="steps", stream=out, interval_s=5, clock=clock) as p:
        for i in range(10):
            clock.t += 2.0
            p.update(1, loss=1.0 / (i + 1))
    lines = out.getvalue().splitlines()
    assert lines[0] == "fit: 1/10 steps (10%)  loss 1.0000  elapsed 0:00:02  eta 0:00:18"
    assert lines[-1].startswith("fit: 10/10 steps (100%)") and lines[-1].endswith("eta 0:00:00")
    assert len(lines) == 4  # steps 1, 4, 7 (>= 5 s apart) and the last
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_progress_close_writes_the_last_state_and_unknown_totals() -> None:
    out, clock = io.StringIO(), _Clock()
    p = Progress(None, "sample", unit="sweeps", stream=out, interval_s=100, clock=clock)
    p.set(3)
    clock.t = 1.0
    p.set(7)
    p.close()
    p.close()
    assert out.getvalue().splitlines() == [
        "sample: 3 sweeps  elapsed 0:00:00",
        "sample: 7 sweeps  elapsed 0:00:01",
    ]
    silent = io.StringIO()
    q = Progress(5, stream=silent, enabled=False)
    q.update(5)
    q.close()
    assert silent.getvalue() == "" and q.done == 5
    assert format_duration(3725.2) == "1:02:05" and format_duration(None) == "?"
    with pytest.raises(ValueError, match="total"):
        Progress(-1)


def test_training_progress_prints_plain_lines_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    with caplog.at_level(logging.INFO, logger="attnpotts.training"):
        train(
            FactoredAttention(L, Q), TRAIN, config=TrainingConfig(max_epochs=3), validation=VALID,
            callbacks=[ProgressBar("fa", stream=out, interval_s=0)],
        )  # fmt: skip
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("fa: 3/3 epochs (100%)  loss ")
    assert "  val " in lines[0] and "eta" in lines[0] and "\x1b" not in out.getvalue()
    assert "epoch 3/3" in caplog.text and "validation" in caplog.text


def test_keep_freed_memory_is_idempotent() -> None:
    first = keep_freed_memory()
    assert keep_freed_memory() is first


def test_release_freed_memory_runs_only_where_memory_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from attnpotts.training import allocator

    kept = keep_freed_memory()
    assert release_freed_memory() is kept  # glibc's malloc_trim where the thresholds were set
    monkeypatch.setattr(allocator, "_done", False)
    assert release_freed_memory() is False


@pytest.mark.gpu
def test_copies_fixed_validation_and_schedule_on_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cfg = TrainingConfig(
        max_epochs=3, masking="copies", n_mask_copies=2, lr_schedule="cosine", warmup_epochs=1,
        batch_size=40, learning_rate=3e-3, validation_positions=2, patience=2,
    )  # fmt: skip
    for kind in ("factored", "transformer"):
        m = build_model(kind, n_sites=L, n_states=Q, device="cuda")
        res = train(m, TRAIN, config=cfg, validation=VALID)
        assert res.validation_positions == 2 and res.tokens_seen == 3 * 2 * len(TRAIN)
        assert np.isfinite(res.final_validation_loss)
