"""The ``reproduce`` pipeline: check the output folder, run the stages, write the results document.

:func:`reproduce` runs the selected stages (:mod:`.stages`) in order on one
:class:`~.context.StageContext`, assembles ``results.json`` (validated against the report's schema,
with the verdicts on the paper's claims from :mod:`attnpotts.experiments.claims`) and writes it,
the figures, ``report.html`` and ``summary.json`` atomically.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ... import __version__
from ...errors import ValidationError
from ...storage import atomic_write_bytes, atomic_write_json, environment_info, to_jsonable
from ..claims import evaluate_claims
from ..config import STAGES, ReproduceConfig
from ..executors import Executor, LocalExecutor
from ..store import ResultsStore
from .context import StageContext
from .eta import Eta, estimated_cost
from .specs import pipeline_specs
from .stages import STAGE_FUNCTIONS

__all__ = ["RESULTS_SCHEMA_ID", "ReproduceResult", "reproduce"]

logger = logging.getLogger(__name__)

#: Version of the results document (``results.json``).
RESULTS_SCHEMA_ID = "attnpotts.reproduce/2"


@dataclass(frozen=True)
class ReproduceResult:
    """Paths of what :func:`reproduce` wrote and the results document."""

    out: Path
    results: dict[str, Any]
    report: Path
    results_path: Path
    figures: dict[str, Path]


def _check_out(out: Path, config_doc: dict[str, Any], overwrite: bool) -> None:
    """Refuse an --out folder of another configuration (unless overwrite, which clears it).

    The same configuration (up to the stage selection) resumes: its finished runs are reused.
    """
    if not out.exists() or not any(out.iterdir()):
        return
    cfg_path = out / "config.json"
    same = False

    def key(doc: Any) -> Any:
        # the stage selection does not change any run, so it may differ between calls
        return {k: v for k, v in doc.items() if k != "stages"} if isinstance(doc, dict) else doc

    if cfg_path.is_file():
        try:
            same = key(json.loads(cfg_path.read_text()).get("config")) == key(config_doc)
        except (json.JSONDecodeError, UnicodeDecodeError):
            same = False
    if same:
        logger.info("resuming in %s (same configuration)", out)
        return
    if not overwrite:
        raise FileExistsError(
            f"output folder {out} holds results of another configuration (or is not a reproduce "
            "folder); choose another --out, or pass --overwrite to replace it"
        )
    if not cfg_path.is_file() and not (out / "runs").is_dir():
        raise FileExistsError(
            f"{out} does not look like a reproduce output folder; refusing to delete it even with "
            "--overwrite; choose another --out"
        )
    shutil.rmtree(out)


def reproduce(
    config: ReproduceConfig,
    out: str | os.PathLike[str],
    *,
    executor: Executor | None = None,
    overwrite: bool = False,
    progress: bool = False,
    on_stage: Callable[[str, str], None] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> ReproduceResult:
    """Run the selected stages into ``out`` and write ``results.json``, figures and ``report.html``.

    Layout of ``out``: ``config.json`` (resolved config, seed, environment), ``runs/`` (the results
    store: one folder per run; a rerun with the same config resumes from it), ``figures/*.png``,
    ``results.json`` (validated against :data:`attnpotts.reports.reproduce.RESULTS_SCHEMA`),
    ``report.html`` (self-contained) and ``summary.json`` (the main numbers). Every file is
    written atomically.

    Args:
        config: the settings (:meth:`ReproduceConfig.preset`).
        out: output folder.
        executor: where runs execute (default: inline).
        overwrite: replace an ``out`` folder that holds another configuration.
        progress: progress bars per sweep.
        on_stage: called as ``on_stage(stage, "start" | "done")`` (for the CLI's messages).
        on_progress: called after every run (computed or found stored) with ``stage``, ``done``,
            ``total`` (runs of the whole pipeline), ``elapsed_s`` and ``eta_s`` (estimated wall
            seconds left, from the runs' cost estimates rescaled by the speed observed so far).
    """
    from ...reports.reproduce import build_report, validate_results

    out = Path(out)
    if "depth" in config.stages or "couplings" in config.stages:
        _check_device(config.device)
    config_doc = config.to_dict()
    _check_out(out, config_doc, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    executor = executor if executor is not None else LocalExecutor(1)
    atomic_write_json(
        out / "config.json",
        {"config": config_doc, "seed": config.seed, "environment": environment_info(),
         "executor": executor.describe()},
    )  # fmt: skip
    ctx = StageContext(config=config, store=ResultsStore(out / "runs"), executor=executor, progress=progress)
    if on_progress is not None:
        plan = {r.run_id: estimated_cost(r) for spec in pipeline_specs(config) for r in spec.expand()}
        ctx.eta = Eta(plan, int(executor.describe().get("n_workers", 1) or 1), on_progress)
    t0 = time.perf_counter()
    stages, figures, timings = _run_stages(ctx, on_stage)
    results = {
        "schema": RESULTS_SCHEMA_ID,
        "attnpotts_version": __version__,
        "created": datetime.now(UTC).isoformat(),
        "mode": config.mode,
        "seed": config.seed,
        "config": config_doc,
        "environment": environment_info(),
        "executor": executor.describe(),
        "stages": stages,
        "not_run": [s for s in STAGES if s not in config.stages],
        "sweeps": ctx.sweeps,
        "timings": {"total_s": time.perf_counter() - t0, "stages_s": timings},
    }
    results = to_jsonable(results)
    results["claims"] = to_jsonable([c.as_dict() for c in evaluate_claims(results)])
    validate_results(results)
    with ctx.store.lock():  # another reproduce() into ``out`` neither interleaves nor cleans up here
        fig_paths = {k: atomic_write_bytes(out / "figures" / f"{k}.png", v) for k, v in figures.items()}
        results_path = atomic_write_json(out / "results.json", results)
        report = build_report(results, figures)
        report_path = report.write(out / "report.html")
        atomic_write_json(out / "summary.json", _summary(results))
        stale = _remove_stale_temporaries(out)
    if stale:
        logger.info("removed %d temporary file(s) of a killed run in %s", len(stale), out)
    return ReproduceResult(out, results, report_path, results_path, fig_paths)


#: Files ``reproduce`` writes atomically into its output folder (each through a temporary
#: ``.<name>.<random>.tmp`` next to it, which a killed run can leave behind).
_OUTPUT_FILES = ("config.json", "results.json", "report.html", "summary.json")


def _remove_stale_temporaries(out: Path) -> list[Path]:
    """Delete the temporary files killed writes of ``reproduce`` left in ``out`` and ``out/figures``.

    Only names of its own atomic writes are touched: ``.<output file>.*.tmp`` in ``out`` and
    ``.<name>.png.*.tmp`` in ``out/figures`` (the results store removes its own temporary folders
    at the start of every sweep). Call it after the outputs are written, holding the store's lock.
    """
    stale = [
        p for p in out.glob(".*.tmp")
        if any(p.name.startswith(f".{name}.") for name in _OUTPUT_FILES)
    ]  # fmt: skip
    stale += (out / "figures").glob(".*.png.*.tmp")
    removed = []
    for p in stale:
        if p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _run_stages(
    ctx: StageContext, on_stage: Callable[[str, str], None] | None
) -> tuple[dict[str, Any], dict[str, bytes], dict[str, float]]:
    """Run the selected stages in pipeline order: their entries of ``results["stages"]``, their
    figures (PNG bytes by name) and their wall seconds."""
    stages: dict[str, Any] = {}
    figures: dict[str, bytes] = {}
    timings: dict[str, float] = {}
    for name in STAGES:
        if name not in ctx.config.stages:
            continue
        if on_stage is not None:
            on_stage(name, "start")
        ts = time.perf_counter()
        if ctx.eta is not None:
            ctx.eta.stage = name
        result = STAGE_FUNCTIONS[name](ctx)
        timings[name] = time.perf_counter() - ts
        overlap = set(result.figures) & set(figures)
        if overlap:  # pragma: no cover - figure names are fixed per stage
            raise RuntimeError(f"two stages wrote figures named {sorted(overlap)}")
        figures.update(result.figures)
        stages[name] = {
            "status": "done",
            "summary": to_jsonable(result.summary),
            "figures": [f"figures/{k}.png" for k in sorted(result.figures)],
            "runs": sorted(set(result.runs)),
        }
        if on_stage is not None:
            on_stage(name, "done")
    return stages, figures, timings


def _check_device(device: str) -> None:
    """Fail early (not in every worker) on a torch device this machine does not have."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValidationError(f"device {device!r} is not a torch device ({exc}); use cpu or cuda") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValidationError(
            f"device {device!r} asked for but torch sees no CUDA device here; use --device cpu "
            "(with --executor dask, the workers' devices count: pass the option they support)"
        )


def _summary(results: Mapping[str, Any]) -> dict[str, Any]:
    """The headline numbers (``summary.json``)."""
    s: dict[str, Any] = {"mode": results["mode"], "seed": results["seed"],
                         "stages": sorted(results["stages"]), "total_s": results["timings"]["total_s"]}  # fmt: skip
    st = results["stages"]
    if "depth" in st:
        d = st["depth"]["summary"]
        s["depth"] = {
            "optimal_loss": d["optimal_loss"],
            "layers_to_match": d["layers_to_match"],
            "test_loss": {m["label"]: m["test_loss"] for m in d["models"]},
            "stop_reasons": {m["label"]: m["stop_reasons"] for m in d["models"]},
            "best_epochs": {m["label"]: m["best_epochs"] for m in d["models"]},
        }
    if "scaling" in st:
        sc = st["scaling"]["summary"]
        s["scaling"] = {
            m["label"]: {
                "sizes": [p["train_size"] for p in m["points"]],
                "excess_loss": [p["excess_loss"] for p in m["points"]],
                "slope": None if m["fit"] is None else m["fit"]["slope"],
                "slope_stderr": None if m["fit"] is None else m["fit"]["slope_stderr"],
            }
            for m in sc["models"]
        }
    if "couplings" in st:
        c = st["couplings"]["summary"]
        s["couplings"] = {k: c[k] for k in ("attention_correlation", "value_correlation", "coupling_correlation")}
    if "theory" in st:
        t = st["theory"]["summary"]
        s["theory"] = {k: t[k] for k in ("n_points", "n_agree", "max_relative_deviation")}
    if "equivalence" in st:
        e = st["equivalence"]["summary"]
        s["equivalence"] = {k: e[k] for k in ("max_rel_difference", "agree")}
    s["claims"] = {c["id"]: {"verdict": c["verdict"], "reason": c["reason"]} for c in results["claims"]}
    return s
