"""Synthetic data sets: sample decorrelated sequences of a generalized Potts model, split, save.

:func:`sample_dataset` is the Python API of ``attnpotts sample``: build (or load) the model,
optionally calibrate ``beta`` to a target mean pairwise Hamming distance, sample with burn-in and
thinning chosen from the measured autocorrelation time, split into train and test, and record a
manifest (model recipe, seed, sampler settings, diagnostics).

Folder format of :meth:`SampledDataset.save` (other parts of attnpotts read it)::

    DIR/model.npz        PottsModel.save (the model at the sampled beta)
    DIR/sequences.npz    arrays ``train`` (M_train, L) int8 and ``test`` (M_test, L) int8
    DIR/train.fasta      FASTA, alphabet Alphabet.generic(q) (only when q <= 26)
    DIR/test.fasta
    DIR/summary.json     the manifest: diagnostics, calibration, sampler settings, timings
    DIR/config.json      the resolved SampleConfig, seed and environment_info()
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..alphabet import GENERIC_SYMBOLS, Alphabet
from ..errors import DataFormatError, ShapeError, ValidationError
from ..potts import PottsModel, check_states, conditional_entropies
from ..random import as_seed_sequence
from ..storage import (
    atomic_output_dir,
    atomic_savez,
    atomic_write_json,
    atomic_write_text,
    environment_info,
    inspect_npz,
    read_bounded,
    to_jsonable,
)
from .calibration import calibrate_beta, default_ladder
from .config import SampleConfig
from .diagnostics import integrated_autocorr_time, mean_pairwise_hamming, split_rhat
from .samplers import MCMCSampler, ParallelTempering

__all__ = ["SampleConfig", "SampledDataset", "sample_dataset"]

log = logging.getLogger(__name__)

#: Burn-in in units of the measured autocorrelation time, and thinning likewise.
_BURN_IN_TAUS = 20
_THIN_TAUS = 2
#: R-hat above which the chains count as not mixed (reported in the manifest, and logged).
_RHAT_WARN = 1.05
#: Largest sequence arrays :meth:`SampledDataset.load` reads (bytes as int64).
_MAX_SEQUENCE_BYTES = 8 * 1024**3

Progress = Callable[[str, int, int], None]
@dataclass(frozen=True, eq=False)
class SampledDataset:
    """Sequences sampled from a Potts model, split into train and test.

    Attributes:
        model: the model at the beta that was sampled.
        train: ``(M_train, L)`` int8 sequences.
        test: ``(M_test, L)`` int8 sequences.
        manifest: how they were made (config, seed, sampler settings, diagnostics); JSON-friendly.
    """

    model: PottsModel
    train: np.ndarray
    test: np.ndarray
    manifest: dict[str, Any]

    def __post_init__(self) -> None:
        for name in ("train", "test"):
            arr = np.asarray(getattr(self, name))
            if arr.ndim != 2 or (arr.size and arr.shape[1] != self.model.n_sites):
                raise ShapeError(f"{name} must be (M, L = {self.model.n_sites}), got {arr.shape}")
            if arr.shape[0]:
                check_states(arr, self.model.n_sites, self.model.n_states, name=name)
            arr = arr.astype(np.int8)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def save(self, directory: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the folder format (module docstring) atomically; return its path.

        Raises:
            FileExistsError: ``directory`` exists, is not empty, and ``overwrite`` is false.
        """
        with atomic_output_dir(directory, overwrite=overwrite) as tmp:
            self.model.save(tmp / "model.npz")
            atomic_savez(tmp / "sequences.npz", train=self.train, test=self.test)
            q = self.model.n_states
            if q <= len(GENERIC_SYMBOLS):
                alphabet = Alphabet.generic(q)
                for name, seqs in (("train", self.train), ("test", self.test)):
                    lines = (
                        [f">{name}_{n}\n{s}\n" for n, s in enumerate(alphabet.decode(seqs))]
                        if seqs.shape[0]
                        else []
                    )
                    atomic_write_text(tmp / f"{name}.fasta", "".join(lines))
            atomic_write_json(tmp / "summary.json", self.manifest)
            config = {
                "config": self.manifest.get("config", {}),
                "seed": self.manifest.get("seed"),
                "environment": environment_info(),
            }
            atomic_write_json(tmp / "config.json", config)
        return Path(directory)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> SampledDataset:
        """Read a folder written by :meth:`save`."""
        d = Path(directory)
        for name in ("model.npz", "sequences.npz", "summary.json"):
            if not (d / name).is_file():
                raise DataFormatError(f"missing {name}; not a sampled data set folder", path=d)
        model = PottsModel.load(d / "model.npz")
        seq_path = d / "sequences.npz"
        header = inspect_npz(seq_path)
        if "train" not in header or "test" not in header:
            raise DataFormatError("sequences.npz needs arrays 'train' and 'test'", path=d)
        for name in ("train", "test"):
            shape, dtype = header[name]
            if dtype.kind not in "iu" or len(shape) != 2 or shape[1] != model.n_sites:
                raise DataFormatError(
                    f"array {name!r} must be integer states of shape (M, L = {model.n_sites}), got "
                    f"{dtype} {shape}",
                    path=seq_path,
                )
            if 8 * shape[0] * shape[1] > _MAX_SEQUENCE_BYTES:
                raise DataFormatError(f"array {name!r} {shape} is too large", path=seq_path)
        try:
            with np.load(seq_path, allow_pickle=False) as npz:
                train, test = npz["train"], npz["test"]
        except Exception as exc:  # zipfile/zlib/ValueError on a corrupt file
            raise DataFormatError(f"not a readable .npz file ({exc})", path=seq_path) from None
        raw = read_bounded(d / "summary.json", 64 * 1024**2, what="a summary.json file")
        try:
            manifest = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataFormatError(f"invalid JSON ({exc})", path=d / "summary.json") from None
        if not isinstance(manifest, dict):
            raise DataFormatError("summary.json must hold a JSON object", path=d / "summary.json")
        try:
            return cls(model, train, test, manifest)
        except ValidationError as exc:
            raise DataFormatError(f"invalid sequences ({exc})", path=seq_path) from None


def _optimal_loss(model: PottsModel, test: np.ndarray) -> dict[str, float]:
    """Mean conditional entropy and the true model's masked-LM loss on ``test``, with std errors."""
    if test.shape[0] < 2:
        return {}
    ent = conditional_entropies(model, test).mean(-1)  # (M,)
    nll = -model.log_conditionals(test).mean(-1)  # (M,)
    M = test.shape[0]
    return {
        "conditional_entropy": float(ent.mean()),
        "conditional_entropy_stderr": float(ent.std(ddof=1) / math.sqrt(M)),
        "true_model_test_loss": float(nll.mean()),
        "true_model_test_loss_stderr": float(nll.std(ddof=1) / math.sqrt(M)),
    }


def _overlap_trace(samples: np.ndarray) -> np.ndarray:
    """``(n, C)`` fraction of sites equal to each chain's first sample (a slow order parameter)."""
    return (samples == samples[:1]).mean(axis=-1)


def sample_dataset(
    config: SampleConfig | None = None, *, progress: Progress | None = None
) -> SampledDataset:
    """Sample a synthetic data set as ``attnpotts sample`` does (see :class:`SampleConfig`).

    Steps: draw the model (seed child 0) or load ``model_file``; calibrate beta if
    ``target_distance`` is set (child 1); a pilot run measures the integrated autocorrelation time
    ``tau`` (in sweeps) of the energy and of the overlap with the pilot's first state, which sets
    burn-in ``20 tau`` and thinning ``ceil(2 tau)`` unless given; the production run keeps
    ``ceil((n_train + n_test) / chains)`` samples per chain; the sequences are shuffled and split
    (child 3).

    Args:
        config: the settings (default: the library default data set).
        progress: called as ``progress(stage, done, total)`` with stage ``"calibration"`` or
            ``"sampling"``.
    """
    config = SampleConfig() if config is None else config
    t0 = time.perf_counter()
    model_seed, cal_seed, run_seed, split_seed = as_seed_sequence(config.seed).spawn(4)
    if config.model_file is not None:
        model = PottsModel.load(config.model_file)
        if config.beta is not None:
            model = model.with_beta(config.beta)
        model_info: dict[str, Any] = {"model_file": str(config.model_file)}
    else:
        model = config.model_spec().build(model_seed)
        model_info = {"spec": config.model_spec().to_dict()}
    calibration = None
    if config.target_distance is not None:
        calibration = calibrate_beta(
            model,
            config.target_distance,
            beta_max=config.beta_max,
            seed=cal_seed,
            progress=None if progress is None else (lambda d, t: progress("calibration", d, t)),
        )
        model = model.with_beta(calibration.beta)
    t_cal = time.perf_counter()

    M = config.n_train + config.n_test
    sampler: MCMCSampler | ParallelTempering
    if config.method == "parallel_tempering":
        ladder = default_ladder(model.beta, config.n_temperatures) if model.beta > 0 else None
        if ladder is None:
            raise ValidationError(
                "parallel tempering needs beta > 0; use method='gibbs' at beta = 0"
            )
        sampler = ParallelTempering(
            model, ladder, rule=config.rule, sweep=config.sweep, dtype=config.dtype
        )
        state = sampler.init_state(config.n_chains, seed=run_seed)
    else:
        sampler = MCMCSampler(model, rule=config.rule, sweep=config.sweep, dtype=config.dtype)
        state = sampler.init_state(config.n_chains, seed=run_seed)

    def target_view(samples: np.ndarray, trace: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # (n, C, L) samples and (n, C) energies of the chains at the target beta
        if samples.ndim == 4:
            return samples[:, -1], trace[:, -1]
        return samples, trace

    # pilot: measure tau on its second half
    pilot = sampler.run(config.pilot_sweeps, state)
    half = config.pilot_sweeps // 2
    p_samples, p_energy = target_view(pilot.samples[half:], pilot.energy_trace[half:])
    tau_energy = integrated_autocorr_time(p_energy)
    tau_overlap = integrated_autocorr_time(_overlap_trace(p_samples))
    tau = max(tau_energy, tau_overlap, 1.0)
    burn_in = (
        config.burn_in
        if config.burn_in is not None
        else max(0, math.ceil(_BURN_IN_TAUS * tau) - half)
    )
    thin = config.thin if config.thin is not None else max(1, math.ceil(_THIN_TAUS * tau))
    n_chains_out = config.n_chains
    per_chain = math.ceil(M / n_chains_out)
    n_sweeps = burn_in + per_chain * thin
    # align to thinning: the run keeps global sweeps divisible by thin after the burn-in
    start = pilot.state.n_sweeps + burn_in
    n_sweeps = burn_in + ((start + per_chain * thin) // thin * thin - start)
    log.info("tau = %.2f sweeps: burn-in %d, thin %d, %d sweeps", tau, burn_in, thin, n_sweeps)

    def on_progress(done: int) -> None:
        if progress is not None:
            progress("sampling", done, n_sweeps)

    run = sampler.run(n_sweeps, pilot.state, burn_in=burn_in, thin=thin, progress=on_progress)
    samples, energy = target_view(run.samples, run.energy_trace)
    samples = samples[-per_chain:]  # (per_chain, C, L)
    production_energy = energy[burn_in:]
    seqs = samples.transpose(1, 0, 2).reshape(-1, model.n_sites)  # chain-major
    rng = np.random.Generator(np.random.PCG64(split_seed))
    seqs = seqs[rng.permutation(seqs.shape[0])[:M]]
    train, test = seqs[: config.n_train], seqs[config.n_train :]
    t_end = time.perf_counter()

    tau_prod = (
        integrated_autocorr_time(production_energy)
        if production_energy.shape[0] >= 4
        else float("nan")
    )
    # R-hat over everything after the first half of the pilot (a short production run alone would
    # give a noisy, upward-biased R-hat)
    equilibrated = np.concatenate([p_energy, energy])
    rhat = split_rhat(equilibrated)
    overlap_prod = _overlap_trace(samples)
    diagnostics: dict[str, Any] = {
        "pilot_tau_energy_sweeps": tau_energy,
        "pilot_tau_overlap_sweeps": tau_overlap,
        "tau_sweeps": tau,
        "production_tau_energy_sweeps": tau_prod,
        "tau_overlap_per_kept_sample": integrated_autocorr_time(overlap_prod)
        if overlap_prod.shape[0] >= 2
        else float("nan"),
        "energy_split_rhat": rhat,
        "energy_split_rhat_sweeps": int(equilibrated.shape[0]),
        "mixing_ok": bool(rhat <= _RHAT_WARN) if np.isfinite(rhat) else None,
        "acceptance_rate": float(np.mean(run.state.acceptance_rate())),
        "mean_energy": float(production_energy.mean()),
        "train_mean_pairwise_hamming": mean_pairwise_hamming(train, model.n_states)
        if train.shape[0] > 1
        else None,
        "test_mean_pairwise_hamming": mean_pairwise_hamming(test, model.n_states)
        if test.shape[0] > 1
        else None,
        **_optimal_loss(model, test),
    }
    if run.state.ladder is not None:
        diagnostics["swap_rates"] = run.state.swap_rates().tolist()
    if diagnostics["mixing_ok"] is False:
        log.warning(
            "chains disagree (energy split-R-hat %.3f > %.2f): samples may not be decorrelated; "
            "try method='parallel_tempering', more pilot_sweeps or a larger burn_in",
            rhat,
            _RHAT_WARN,
        )
    manifest = {
        "kind": "attnpotts.sampled_dataset",
        "config": config.to_dict(),
        "seed": config.seed,
        "model": {
            **model_info,
            "n_sites": model.n_sites,
            "n_states": model.n_states,
            "beta": model.beta,
        },
        "calibration": None if calibration is None else calibration.to_dict(),
        "sampler": {
            **sampler.settings,
            "method": config.method,
            "n_chains": config.n_chains,
            "pilot_sweeps": config.pilot_sweeps,
            "burn_in_sweeps": config.pilot_sweeps + burn_in,
            "thin": thin,
            "production_sweeps": n_sweeps - burn_in,
            "samples_per_chain": per_chain,
            "burn_in_rule": "given" if config.burn_in is not None else f"{_BURN_IN_TAUS} tau",
            "thin_rule": "given" if config.thin is not None else f"ceil({_THIN_TAUS} tau)",
        },
        "sizes": {"n_train": int(train.shape[0]), "n_test": int(test.shape[0])},
        "diagnostics": diagnostics,
        "timings_s": {"calibration": t_cal - t0, "sampling": t_end - t_cal, "total": t_end - t0},
    }
    return SampledDataset(model, train, test, to_jsonable(manifest))
