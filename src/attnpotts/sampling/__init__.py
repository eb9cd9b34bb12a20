"""MCMC sampling of Potts models: Gibbs / Metropolis / parallel tempering, state, diagnostics,
temperature calibration and synthetic data sets."""

from .calibration import (
    CalibrationResult,
    DistanceCurve,
    calibrate_beta,
    default_ladder,
    distance_curve,
    ensemble_distance,
)
from .dataset import SampleConfig, SampledDataset, sample_dataset
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
