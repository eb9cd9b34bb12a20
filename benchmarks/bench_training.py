"""Training throughput and time to reach the optimal loss: factored attention, Potts, transformers.

Data: the library's default synthetic set (``attnpotts sample`` defaults: L = 20, q = 20, sparse
``Jsite`` of mean degree 3, Gaussian ``Ucol``, beta calibrated to a mean pairwise Hamming distance
of 0.88, M = 3000 training and 1000 test sequences), or ``--data DIR`` (a sample folder).

Models (float32, CPU unless ``--device``):

* ``factored``: one free factored-attention layer (1 head, fields), Adam lr 0.05, batch 256, all
  positions predicted (= pseudo-likelihood);
* ``factored-lbfgs``: the same model, full-batch L-BFGS;
* ``potts``: full Potts model (plmDCA), full-batch L-BFGS, no regularisation (overfits at M = 3000);
* ``potts-l2``: the same with ``coupling_l2 = field_l2 = 1e-3`` (L2 on J and h, per-token loss);
* ``transformer-k`` (k = 1..4): width 64, 4 heads, Adam lr 1e-3, batch 128, one random masked
  position per sequence (redrawn every epoch).

For each: training throughput in sequences per second of training time (forward + backward +
update; evaluation excluded) and its ratio to ``factored`` measured in the same run, and the
training time until the test loss first comes within 1 % of the optimal loss (mean conditional
entropy of the true model on the test set), checked after every epoch, within a time budget.
The test set is used only for this measurement, never for training decisions.

Usage: ``python benchmarks/bench_training.py [--quick] [--budget SECONDS] [--data DIR]``
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attnpotts.inference import mlm_loss, optimal_loss
from attnpotts.models import FactoredAttention, FullPotts, MaskedLanguageModel, TransformerEncoder
from attnpotts.storage import atomic_write_json, environment_info
from attnpotts.training import Callback, TrainingConfig, train

#: Target: test loss within this relative distance of the optimal loss.
TARGET = 0.01


class _Watch(Callback):
    """Evaluates the test loss after every epoch; stops at the target or at the time budget."""

    def __init__(
        self, model: MaskedLanguageModel, test: np.ndarray, optimum: float, budget: float
    ) -> None:
        self.model, self.test, self.optimum, self.budget = model, test, optimum, budget
        self.reached_s: float | None = None
        self.reached_epoch: int | None = None
        self.best = float("inf")
        self.trace: list[tuple[float, float]] = []

    def on_epoch_end(self, record: dict[str, Any]) -> bool | None:
        loss = mlm_loss(self.model, self.test)
        self.model.train()
        self.best = min(self.best, loss)
        self.trace.append((record["elapsed_s"], loss))
        if self.reached_s is None and loss <= (1 + TARGET) * self.optimum:
            self.reached_s, self.reached_epoch = record["elapsed_s"], record["epoch"]
            return True
        return record["elapsed_s"] > self.budget


def _setups(L: int, q: int, device: str) -> list[tuple[str, MaskedLanguageModel, TrainingConfig]]:
    out: list[tuple[str, MaskedLanguageModel, TrainingConfig]] = [
        (
            "factored",
            FactoredAttention(L, q, 1, device=device),
            TrainingConfig(learning_rate=0.05, batch_size=256, max_epochs=10_000),
        ),
        (
            "factored-lbfgs",
            FactoredAttention(L, q, 1, device=device),
            TrainingConfig(
                optimizer="lbfgs", learning_rate=1.0, max_epochs=10_000, lbfgs_max_iter=10
            ),
        ),
        (
            "potts",
            FullPotts(L, q, device=device),
            TrainingConfig(
                optimizer="lbfgs", learning_rate=1.0, max_epochs=10_000, lbfgs_max_iter=10
            ),
        ),
        (
            "potts-l2",
            FullPotts(L, q, device=device),
            TrainingConfig(
                optimizer="lbfgs",
                learning_rate=1.0,
                max_epochs=10_000,
                lbfgs_max_iter=10,
                coupling_l2=1e-3,
                field_l2=1e-3,
            ),
        ),
    ]
    for k in range(1, 5):
        out.append(
            (
                f"transformer-{k}",
                TransformerEncoder(L, q, n_layers=k, n_heads=4, width=64, device=device),
                TrainingConfig(
                    learning_rate=1e-3, batch_size=128, masking="one", max_epochs=10_000
                ),
            )
        )
    return out


def _data(args: argparse.Namespace) -> tuple[Any, np.ndarray, np.ndarray, dict[str, Any]]:
    from attnpotts.sampling import SampleConfig, SampledDataset, sample_dataset

    if args.data is not None:
        ds = SampledDataset.load(args.data)
    else:
        cfg = (
            SampleConfig(seed=0)
            if not args.quick
            else SampleConfig(
                seed=0,
                n_sites=8,
                n_states=5,
                target_distance=None,
                beta=0.5,
                n_train=500,
                n_test=300,
            )
        )
        ds = sample_dataset(cfg)
    info = {
        "n_sites": ds.model.n_sites,
        "n_states": ds.model.n_states,
        "beta": ds.model.beta,
        "n_train": int(ds.train.shape[0]),
        "n_test": int(ds.test.shape[0]),
    }
    return ds.model, np.asarray(ds.train, np.int64), np.asarray(ds.test, np.int64), info


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny data and budget (smoke test)")
    parser.add_argument(
        "--budget", type=float, default=None, help="training seconds per model (default 120)"
    )
    parser.add_argument(
        "--data", default=None, help="an `attnpotts sample` folder (default: sample now)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", default=None, help="comma-separated model names")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_training.json"
    )
    args = parser.parse_args()
    budget = args.budget if args.budget is not None else (5.0 if args.quick else 120.0)
    t0 = time.perf_counter()
    true, train_s, test, info = _data(args)
    info["sampling_s"] = time.perf_counter() - t0
    opt = optimal_loss(true, test)
    L, q = info["n_sites"], info["n_states"]
    rows = []
    for name, model, cfg in _setups(L, q, args.device):
        if args.only and name not in args.only.split(","):
            continue
        watch = _Watch(model, test, opt.mean, budget)
        res = train(model, train_s, config=cfg, callbacks=[watch])
        seqs = res.epochs * train_s.shape[0]
        rows.append(
            {
                "model": name,
                "n_parameters": model.n_parameters(),
                "epochs": res.epochs,
                "train_time_s": res.wall_time_s,
                "throughput_seq_per_s": seqs / res.wall_time_s if res.wall_time_s > 0 else None,
                "time_to_target_s": watch.reached_s,
                "epochs_to_target": watch.reached_epoch,
                "best_test_loss": watch.best,
                "best_relative_excess": watch.best / opt.mean - 1,
                "trace": watch.trace,
            }
        )
    base = next((r["throughput_seq_per_s"] for r in rows if r["model"] == "factored"), None)
    for r in rows:
        r["throughput_ratio_to_factored"] = (
            r["throughput_seq_per_s"] / base if base and r["throughput_seq_per_s"] else None
        )
    print(
        f"L={L} q={q} M={info['n_train']} test={info['n_test']} beta={info['beta']:.3f}  "
        f"optimal loss {opt.mean:.4f} +- {opt.stderr:.4f} nats; budget {budget:.0f} s/model; "
        f"{torch.get_num_threads()} torch threads"
    )
    head = f"{'model':16s} {'params':>8s} {'seq/s':>10s} {'ratio':>7s} {'epochs':>7s} {'t(1%) s':>9s} {'best excess':>12s}"
    print(head)
    print("-" * len(head))
    for r in rows:
        t = "not reached" if r["time_to_target_s"] is None else f"{r['time_to_target_s']:.1f}"
        ratio = r["throughput_ratio_to_factored"]
        print(
            f"{r['model']:16s} {r['n_parameters']:8d} {r['throughput_seq_per_s']:10.0f} "
            f"{(ratio or float('nan')):7.3f} {r['epochs']:7d} {t:>9s} {100 * r['best_relative_excess']:11.2f}%"
        )
    atomic_write_json(
        args.out,
        {
            "benchmark": "training",
            "target_relative_excess": TARGET,
            "budget_s": budget,
            "data": info,
            "optimal_loss": opt.as_dict(),
            "rows": rows,
            "machine": {
                "cpu_count": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "processor": platform.processor(),
                "device": args.device,
            },
            "environment": environment_info(),
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
