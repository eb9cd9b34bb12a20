"""Training throughput before and after, per depth, and the loss per CPU-second of a full run.

Usage::

    python benchmarks/bench_training.py [--base-commit ebf0cd6] [--repeats 2] [--epochs 3]
                                        [--curves] [--depths 1 2 3 4] [--quick]

Data: the default ``attnpotts reproduce`` depth-study set (L = q = 20, M = 3000 training and 500
validation sequences, 1000 test sequences; sampled once here and handed to every worker).

Section ``throughput``: each row trains for ``--epochs`` epochs in a fresh worker process
(``--threads`` torch threads, default 1, so that a loaded machine perturbs it least) and reports

* ``tokens_per_cpu_s``: masked training targets per process CPU-second of the epoch loop
  (training steps *and* the per-epoch validation, without the final all-positions evaluation):
  what an epoch really costs;
* ``train_tokens_per_s``: targets per wall-second of the training steps alone (``elapsed_s``);
* ``user_s``, ``sys_s``, ``minflt``: user and system CPU seconds and minor page faults of the
  epoch loop (``getrusage``), and the same for the final evaluation.

Implementations: ``before`` is the library at ``--base-commit`` (the tree extracted with
``git archive``, imported by its own ``PYTHONPATH``), ``after`` is this working tree. Runs are
interleaved (before, after, before, after, ...) and repeated; medians are reported, with the
after/before ratio of each pair's medians. Configurations: the reproduce defaults before this
change (transformer: AdamW lr 2e-3, batch 64, one masked position per sequence, dropout 0.1,
weight decay 0.01; factored: Adam lr 0.05, batch 256, all positions) in both implementations,
and the recommended transformer setting (``RECOMMENDED``) in ``after`` only.

Section ``curves`` (``--curves``): every depth (and the factored layer) trained with the
recommended setting until early stopping; per epoch the cumulative process CPU-seconds, training
tokens and the validation loss; at the end the exact validation and test losses next to the
optimal loss. One seed; this is the measurement behind the default reproduce budget.

The machine is shared: the load average is recorded; compare numbers within one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

#: The reproduce default before this benchmark's change, for both implementations.
TRANSFORMER_BEFORE: dict[str, Any] = {
    "optimizer": "adamw", "learning_rate": 2e-3, "batch_size": 64, "masking": "one",
    "weight_decay": 0.01, "patience": 5,
}  # fmt: skip
FACTORED: dict[str, Any] = {
    "optimizer": "adam", "learning_rate": 0.05, "batch_size": 256, "masking": "all", "patience": 5,
}  # fmt: skip
#: The recommended transformer setting (after only).
RECOMMENDED: dict[str, Any] = {
    "optimizer": "adamw", "learning_rate": 2e-3, "batch_size": 64, "masking": "copies",
    "n_mask_copies": 4, "weight_decay": 0.01, "patience": 5, "warmup_epochs": 1.0,
    "lr_schedule": "constant",
}  # fmt: skip
DROPOUT = 0.1
WIDTH, HEADS = 64, 4


# ----------------------------------------------------------------------------- worker
def _targets_per_epoch(cfg: dict[str, Any], m: int, n_sites: int) -> int:
    masking = cfg.get("masking", "all")
    if masking == "one":
        return m
    if masking == "copies":
        k = cfg.get("n_mask_copies") or n_sites
        return m * min(int(k), n_sites)
    if masking == "all":
        return m * n_sites
    raise ValueError(f"no fixed target count for masking {masking!r}")


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one model in this process (whichever attnpotts is on the path); measure the loop."""
    import attnpotts  # noqa: F401, I001  (first: sets the OpenMP wait policy)
    import numpy as np
    import torch
    from attnpotts.inference import mlm_loss
    from attnpotts.models import build_model
    from attnpotts.training import Callback, TrainingConfig, train

    torch.set_num_threads(int(spec["threads"]))
    data = np.load(spec["data"])
    train_s, val = data["train"], data["validation"]
    n_sites, n_states = train_s.shape[1], int(data["n_states"])
    model = build_model(spec["kind"], n_sites=n_sites, n_states=n_states, seed=1, **spec["model"])
    cfg = TrainingConfig(seed=2, max_epochs=int(spec["epochs"]), **spec["training"])

    def usage() -> list[float]:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return [time.process_time(), r.ru_utime, r.ru_stime, float(r.ru_minflt)]

    marks: dict[str, Any] = {"epochs": []}

    class Mark(Callback):
        def on_train_begin(self, info: dict[str, Any]) -> None:
            marks["begin"] = usage()

        def on_epoch_end(self, record: dict[str, Any]) -> bool | None:
            marks["last"] = usage()
            marks["epochs"].append(dict(record))
            return None

        def on_train_end(self, result: Any) -> None:
            marks["end"] = usage()

    res = train(model, train_s, config=cfg, validation=val, callbacks=[Mark()])
    loop = [b - a for a, b in zip(marks["begin"], marks["last"], strict=True)]
    final = [b - a for a, b in zip(marks["last"], marks["end"], strict=True)]
    tokens = res.epochs * _targets_per_epoch(spec["training"], train_s.shape[0], n_sites)
    out: dict[str, Any] = {
        "epochs": res.epochs,
        "stop_reason": res.stop_reason,
        "best_epoch": res.best_epoch,
        "tokens": tokens,
        "loop_cpu_s": loop[0],
        "tokens_per_cpu_s": tokens / loop[0] if loop[0] > 0 else None,
        "train_wall_s": res.wall_time_s,
        "train_tokens_per_s": tokens / res.wall_time_s if res.wall_time_s > 0 else None,
        "user_s": loop[1],
        "sys_s": loop[2],
        "minflt": int(loop[3]),
        "final_eval": {
            "cpu_s": final[0],
            "user_s": final[1],
            "sys_s": final[2],
            "minflt": int(final[3]),
        },
        "final_validation_loss": res.final_validation_loss,
        "best_validation_loss": res.best_validation_loss,
    }
    hist = marks["epochs"]
    if hist and "validation_cpu_s" in hist[0]:
        val_cpu = sum(r["validation_cpu_s"] for r in hist)
        out["validation_share"] = val_cpu / max(1e-12, loop[0] - val_cpu)
    if spec.get("curve"):
        out["curve"] = {
            "epoch": [r["epoch"] for r in hist],
            "cpu_s": [r.get("cpu_s") for r in hist],
            "tokens_seen": [r.get("tokens_seen") for r in hist],
            "train_loss": [r["train_loss"] for r in hist],
            "validation_loss": [r["validation_loss"] for r in hist],
            "learning_rate": [r.get("learning_rate") for r in hist],
        }
        out["cpu_time_s"] = getattr(res, "cpu_time_s", None)
        out["validation_positions"] = getattr(res, "validation_positions", None)
        out["still_improving"] = getattr(res, "still_improving", None)
        out["test_loss"] = mlm_loss(model, data["test"])
    return out


def _run_worker(spec: dict[str, Any], src: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_WAIT_POLICY": "passive"}
    env.pop("MALLOC_ARENA_MAX", None)
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({spec['label']}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- driver
def _write(path: Path, record: dict[str, Any]) -> None:
    from attnpotts.storage import atomic_write_json

    atomic_write_json(path, record)


def _sample(quick: bool, path: Path) -> dict[str, Any]:
    import numpy as np

    from attnpotts.experiments.reproduce import ReproduceConfig, data_recipe
    from attnpotts.experiments.tasks import dataset_from_params
    from attnpotts.inference import optimal_loss

    cfg = ReproduceConfig.preset("quick" if quick else "default")
    t0 = time.process_time()
    d = dataset_from_params(data_recipe(cfg))
    opt = optimal_loss(d.model, d.test)
    np.savez(path, train=d.train, validation=d.validation, test=d.test, n_states=d.model.n_states)
    return {
        "n_sites": int(d.train.shape[1]), "n_states": int(d.model.n_states),
        "n_train": int(d.train.shape[0]), "n_validation": int(d.validation.shape[0]),
        "n_test": int(d.test.shape[0]), "beta": float(d.model.beta),
        "optimal_loss": opt.as_dict(), "sampling_cpu_s": time.process_time() - t0,
    }  # fmt: skip


def _extract(commit: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "src"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def _setups(depths: list[int]) -> list[dict[str, Any]]:
    rows = [{"label": "factored", "kind": "factored", "model": {"n_heads": 1},
             "training": FACTORED, "impls": ("before", "after")}]  # fmt: skip
    for d in depths:
        model = {"n_layers": d, "width": WIDTH, "n_heads": HEADS, "dropout": DROPOUT}
        rows.append({"label": f"transformer-{d}", "kind": "transformer", "model": model,
                     "training": TRANSFORMER_BEFORE, "impls": ("before", "after")})  # fmt: skip
        rows.append({"label": f"transformer-{d} recommended", "kind": "transformer",
                     "model": model, "training": RECOMMENDED, "impls": ("after",)})  # fmt: skip
    return rows


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument(
        "--base-commit", default="ebf0cd6", help="the 'before' commit (default ebf0cd6)"
    )
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per throughput run")
    ap.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument(
        "--curves", action="store_true", help="also train every depth to early stopping"
    )
    ap.add_argument("--curve-epochs", type=int, default=60, help="epoch cap of the curves")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--quick", action="store_true", help="the quick reproduce data (smoke test)")
    ap.add_argument("--out", type=Path, default=RESULTS / "bench_training.json")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    from attnpotts.storage import environment_info

    record: dict[str, Any] = {
        "benchmark": "training", "base_commit": args.base_commit, "epochs": args.epochs,
        "threads": args.threads, "repeats": args.repeats, "load_average_start": os.getloadavg(),
        "settings": {"transformer_before": TRANSFORMER_BEFORE, "factored": FACTORED,
                     "recommended": RECOMMENDED, "dropout": DROPOUT, "width": WIDTH,
                     "heads": HEADS},
        "environment": environment_info(),
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        data = Path(tmp) / "data.npz"
        record["data"] = _sample(args.quick, data)
        srcs = {"after": ROOT / "src"}
        if not args.skip_throughput:
            srcs["before"] = _extract(args.base_commit, Path(tmp))
            runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for src in srcs.values():  # compile (and cache) the numba kernels of each tree
                warm = {**_setups([])[0], "impls": None, "data": str(data), "epochs": 1,
                        "threads": args.threads}  # fmt: skip
                _run_worker(warm, src)
            for rep in range(args.repeats):
                for setup in _setups(args.depths):
                    for impl in setup["impls"]:
                        spec = {**setup, "impls": None, "data": str(data), "epochs": args.epochs,
                                "threads": args.threads}  # fmt: skip
                        out = _run_worker(spec, srcs[impl])
                        runs.setdefault((setup["label"], impl), []).append(out)
                        print(f"  [{rep + 1}/{args.repeats}] {setup['label']:28s} {impl:6s} "
                              f"{out['tokens_per_cpu_s']:9.0f} tokens/CPU-s  user {out['user_s']:6.1f} "
                              f"sys {out['sys_s']:5.1f}", flush=True)  # fmt: skip
            rows = []
            for (label, impl), outs in runs.items():
                row = {"model": label, "impl": impl, "n": len(outs), "runs": outs}
                for key in ("tokens_per_cpu_s", "train_tokens_per_s", "loop_cpu_s", "user_s",
                            "sys_s", "minflt"):  # fmt: skip
                    row[key] = _median([o[key] for o in outs])
                row["final_eval_sys_s"] = _median([o["final_eval"]["sys_s"] for o in outs])
                row["final_eval_cpu_s"] = _median([o["final_eval"]["cpu_s"] for o in outs])
                if "validation_share" in outs[0]:
                    row["validation_share"] = _median([o["validation_share"] for o in outs])
                rows.append(row)
            for row in rows:
                base = next(
                    (r for r in rows if r["impl"] == "before"
                     and r["model"] == row["model"].removesuffix(" recommended")), None,
                )  # fmt: skip
                row["ratio_to_before"] = (
                    None if base is None else row["tokens_per_cpu_s"] / base["tokens_per_cpu_s"]
                )
            record["throughput"] = rows
            _print_throughput(rows)
            _write(args.out, record)
        if args.curves:
            curves = []
            setups = [s for s in _setups(args.depths) if s["label"] == "factored"
                      or s["label"].endswith("recommended")]  # fmt: skip
            for setup in setups:
                spec = {**setup, "impls": None, "data": str(data), "epochs": args.curve_epochs,
                        "threads": args.threads, "curve": True}  # fmt: skip
                out = _run_worker(spec, srcs["after"])
                out["model"] = setup["label"]
                curves.append(out)
                print(f"  curve {setup['label']:28s} {out['stop_reason']:15s} epochs "
                      f"{out['epochs']:3d} best {out['best_epoch']}  CPU {out['cpu_time_s']:7.1f} s  "
                      f"test {out['test_loss']:.4f}", flush=True)  # fmt: skip
                record["curves"] = curves
                _write(args.out, record)
    record["load_average_end"] = os.getloadavg()
    _write(args.out, record)
    print(f"wrote {args.out}")
    return 0


def _print_throughput(rows: list[dict[str, Any]]) -> None:
    head = (f"{'model':28s} {'impl':6s} {'tokens/CPU-s':>12s} {'x before':>8s} {'train tok/s':>11s} "
            f"{'user s':>7s} {'sys s':>6s} {'minflt':>9s} {'val share':>9s} {'final sys':>9s}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = "" if r["ratio_to_before"] is None else f"{r['ratio_to_before']:.2f}"
        share = f"{100 * r['validation_share']:.1f}%" if "validation_share" in r else "(all pos.)"
        print(f"{r['model']:28s} {r['impl']:6s} {r['tokens_per_cpu_s']:12.0f} {ratio:>8s} "
              f"{r['train_tokens_per_s']:11.0f} {r['user_s']:7.1f} {r['sys_s']:6.1f} "
              f"{r['minflt']:9.0f} {share:>9s} {r['final_eval_sys_s']:9.2f}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
