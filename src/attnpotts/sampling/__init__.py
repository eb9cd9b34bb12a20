"""MCMC sampling of Potts models: Gibbs / Metropolis / parallel tempering, state, diagnostics,
temperature calibration and synthetic data sets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from .config import SampleConfig

if TYPE_CHECKING:
    from .calibration import (
        CalibrationResult,
        DistanceCurve,
        calibrate_beta,
        default_ladder,
        distance_curve,
        ensemble_distance,
    )
    from .dataset import SampledDataset, sample_dataset
    from .diagnostics import (
        autocorrelation,
        effective_sample_size,
        integrated_autocorr_time,
        mean_pairwise_hamming,
        split_rhat,
        trace_summary,
    )
    from .kernels import heat_bath_choice, metropolis_choice, site_choice
    from .samplers import MCMCRun, MCMCSampler, ParallelTempering, PTRun, Rule, SweepOrder
    from .state import SamplerState

__all__ = [
    "CalibrationResult",
    "DistanceCurve",
    "MCMCRun",
    "MCMCSampler",
    "PTRun",
    "ParallelTempering",
    "Rule",
    "SampleConfig",
    "SampledDataset",
    "SamplerState",
    "SweepOrder",
    "autocorrelation",
    "calibrate_beta",
    "default_ladder",
    "distance_curve",
    "effective_sample_size",
    "ensemble_distance",
    "heat_bath_choice",
    "integrated_autocorr_time",
    "mean_pairwise_hamming",
    "metropolis_choice",
    "sample_dataset",
    "site_choice",
    "split_rhat",
    "trace_summary",
]

#: Everything but the options loads numba (the kernels) or scipy: imported on first use.
__getattr__, __dir__ = lazy_attributes(__name__, {
    **dict.fromkeys(("CalibrationResult", "DistanceCurve", "calibrate_beta", "default_ladder",
                     "distance_curve", "ensemble_distance"), "calibration"),
    "SampledDataset": "dataset", "sample_dataset": "dataset",
    **dict.fromkeys(("autocorrelation", "effective_sample_size", "integrated_autocorr_time",
                     "mean_pairwise_hamming", "split_rhat", "trace_summary"), "diagnostics"),
    "heat_bath_choice": "kernels", "metropolis_choice": "kernels", "site_choice": "kernels",
    **dict.fromkeys(("MCMCRun", "MCMCSampler", "ParallelTempering", "PTRun", "Rule",
                     "SweepOrder"), "samplers"),
    "SamplerState": "state",
}, eager=__all__)  # fmt: skip
