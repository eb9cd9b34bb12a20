"""The settings of ``attnpotts reproduce``: :class:`ReproduceConfig`, its presets and stage names."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ValidationError, reject_unknown_keys
from ..options import OptionSpec, boolean, choice, integer, number, number_list, text, validate

__all__ = ["MODES", "STAGES", "ReproduceConfig"]

#: Stages in pipeline order.
STAGES: tuple[str, ...] = ("depth", "scaling", "couplings", "theory", "equivalence")
#: Presets of :meth:`ReproduceConfig.preset`.
MODES: tuple[str, ...] = ("quick", "default", "full")


@dataclass(frozen=True)
class ReproduceConfig:
    """Every setting of ``attnpotts reproduce`` (flat, TOML-friendly; see :meth:`preset`).

    Data: ``n_sites``, ``n_states``, ``n_train``, ``n_validation``, ``n_test``; ``calibrate``
    (beta set by the sampler to ``target_distance``, else ``beta``); ``n_chains``,
    ``pilot_sweeps`` of the sampler.

    Depth study: ``depths`` (transformer layers), ``width``, ``transformer_heads``, the
    regularisation grid ``transformer_dropout`` (with AdamW ``transformer_weight_decay``),
    ``transformer_lr``, ``transformer_batch_size``, ``transformer_epochs``, ``transformer_masking``
    (``"copies"``: ``transformer_mask_copies`` masked copies of every sequence per step, each with
    one different position masked, ``0`` = all ``L``; ``"one"``: one masked position per sequence;
    ``"bert"``), ``transformer_warmup_epochs`` and ``transformer_lr_schedule`` (``"constant"`` or
    ``"cosine"``); ``factored_heads``, ``factored_variant``, the grid ``factored_coupling_l2`` (L2
    on the coupling product), ``factored_optimizer`` (``"lbfgs"``: full-batch pseudo-likelihood
    maximisation, or ``"adam"``), ``factored_lr``, ``factored_batch_size`` (Adam),
    ``factored_epochs`` (all positions predicted); early stopping ``patience`` (epochs) on the
    validation set; ``n_seeds`` training seeds per setting; ``match_tolerance`` (relative,
    0.01 = 1%).

    Learning curves in the number of training sequences (stage ``scaling``): ``scaling_sizes``
    (``M`` values; nested random subsets of one sampled pool per data seed),
    ``scaling_data_seeds`` (data sets, each a new model from the ensemble with its own samples and
    test set), ``scaling_depths`` (transformer depths trained at every size; empty: the factored
    layer only) at the sizes up to ``scaling_transformer_max_size`` (transformers cost far more per
    sequence than the factored layer). Same hyper-parameters as the depth study, the first value of
    each regularisation grid, one training seed per size and data seed.

    Theory: ``theory_states`` (q), ``theory_ucol`` (``"identity"`` or ``"gaussian"``),
    ``theory_beta``, ``theory_rho``, ``theory_lambdas``, ``theory_alphas`` (simulation points;
    the theory lines use ``theory_curve_points`` log-spaced alphas plus these), simulations with
    ``simulation_sites`` (N), ``simulation_seeds``, ``simulation_test``.

    Equivalence: ``equivalence_draws`` random parameter sets per variant x fields, on
    ``equivalence_sequences`` random sequences of ``equivalence_sites`` x ``equivalence_states``.
    """

    mode: str = choice("default", MODES, flag="", help="preset (set by --quick / --full)")
    seed: int = integer(
        0, 0, 2**63 - 1, flag="", help="seed of everything (data, training, simulations)"
    )
    stages: tuple[str, ...] = number_list(
        STAGES, OptionSpec("choice", choices=STAGES), flag="", help="stages to run (--stages a,b)"
    )
    device: str = text("cpu", flag="", help="torch device")
    # data
    n_sites: int = integer(20, 2, help="L sites", group="data")
    n_states: int = integer(20, 2, help="q states", group="data")
    n_train: int = integer(3000, 2, help="training sequences", group="data")
    n_validation: int = integer(500, 2, help="validation sequences (early stopping)", group="data")
    n_test: int = integer(1000, 2, help="test sequences", group="data")
    calibrate: bool = boolean(
        True, help="calibrate beta to target_distance (else sample at beta)", group="data"
    )
    target_distance: float = number(
        0.88,
        0,
        1,
        low_open=True,
        high_open=True,
        help="mean pairwise Hamming distance of the calibration",
        group="data",
    )
    beta: float = number(
        1.0, 0, low_open=True, help="inverse temperature without calibration", group="data"
    )
    n_chains: int = integer(200, 1, help="sampler chains", group="data")
    pilot_sweeps: int = integer(400, 8, help="sampler pilot sweeps", group="data")
    # depth study
    depths: tuple[int, ...] = number_list(
        (1, 2, 3, 4),
        OptionSpec("int", low=1),
        help="transformer depths (layers)",
        group="depth study",
    )
    width: int = integer(32, 1, help="transformer width", group="depth study")
    transformer_heads: int = integer(4, 1, help="transformer attention heads", group="depth study")
    transformer_dropout: tuple[float, ...] = number_list(
        (0.1,),
        OptionSpec("float", low=0, high=1, high_open=True),
        help="transformer dropout grid",
        group="depth study",
    )
    transformer_weight_decay: float = number(
        0.01, 0, help="transformer AdamW weight decay", group="depth study"
    )
    transformer_lr: float = number(
        2e-3, 0, low_open=True, help="transformer learning rate", group="depth study"
    )
    transformer_batch_size: int = integer(64, 1, help="transformer batch size", group="depth study")
    transformer_epochs: int = integer(
        300, 1, help="transformer maximum epochs", group="depth study"
    )
    transformer_masking: str = choice(
        "copies", ("one", "all", "bert", "copies"), help="transformer masking", group="depth study"
    )
    transformer_mask_copies: int = integer(
        4, 0, help="transformer masked copies per sequence (0 = all L)", group="depth study"
    )
    transformer_warmup_epochs: float = number(
        1.0, 0, help="transformer learning-rate warm-up epochs", group="depth study"
    )
    transformer_lr_schedule: str = choice(
        "constant",
        ("constant", "cosine"),
        help="transformer learning-rate schedule",
        group="depth study",
    )
    factored_heads: int = integer(1, 1, help="factored attention heads", group="depth study")
    factored_variant: str = choice(
        "free", ("free", "softmax"), help="factored attention variant", group="depth study"
    )
    factored_coupling_l2: tuple[float, ...] = number_list(
        (0.0, 1e-4),
        OptionSpec("float", low=0),
        help="grid of the coupling L2 (coupling_l2) of the factored layer",
        group="depth study",
    )
    factored_optimizer: str = choice(
        "lbfgs", ("lbfgs", "adam"), help="factored layer optimizer", group="depth study"
    )
    factored_lr: float = number(
        1.0, 0, low_open=True, help="factored layer learning rate", group="depth study"
    )
    factored_batch_size: int = integer(
        256, 1, help="factored layer batch size (adam)", group="depth study"
    )
    factored_epochs: int = integer(60, 1, help="factored layer maximum epochs", group="depth study")
    patience: int = integer(5, 1, help="early stopping patience (epochs)", group="depth study")
    n_seeds: int = integer(2, 1, help="training seeds per setting", group="depth study")
    match_tolerance: float = number(
        0.01,
        0,
        low_open=True,
        help='relative tolerance of "matches the factored layer"',
        group="depth study",
    )
    # learning curves in M
    scaling_sizes: tuple[int, ...] = number_list(
        (300, 1000, 3000, 10000),
        OptionSpec("int", low=2),
        help="training-set sizes M of the learning curves",
        group="learning curves in M",
    )
    scaling_data_seeds: int = integer(3, 1, help="data sets per size", group="learning curves in M")
    scaling_depths: tuple[int, ...] = number_list(
        (1,),
        OptionSpec("int", low=1),
        empty=True,
        help="transformer depths of the learning curves (none: the factored layer only)",
        group="learning curves in M",
    )
    scaling_transformer_max_size: int = integer(
        1000, 1, help="largest M at which transformers are trained", group="learning curves in M"
    )
    # theory
    theory_states: int = integer(3, 2, help="q of the replica scenario", group="theory")
    theory_ucol: str = choice(
        "identity", ("identity", "gaussian"), help="Ucol of the replica scenario", group="theory"
    )
    theory_beta: float = number(
        3.0, 0, low_open=True, help="teacher inverse temperature", group="theory"
    )
    theory_rho: float = number(
        1.0, 0, low_open=True, help="variance of the teacher row", group="theory"
    )
    theory_lambdas: tuple[float, ...] = number_list(
        (0.01, 0.1, 1.0),
        OptionSpec("float", low=0),
        help="L2 strengths of the theory lines",
        group="theory",
    )
    theory_alphas: tuple[float, ...] = number_list(
        (0.5, 1.0, 2.0, 4.0, 8.0),
        OptionSpec("float", low=0, low_open=True),
        help="alphas of the simulation points",
        group="theory",
    )
    theory_curve_points: int = integer(
        25, 2, help="log-spaced alphas of each theory line", group="theory"
    )
    simulation_sites: int = integer(200, 2, help="N of the simulations", group="theory")
    simulation_seeds: int = integer(4, 1, help="teachers per simulation point", group="theory")
    simulation_test: int = integer(5000, 1, help="test inputs per teacher", group="theory")
    # equivalence
    equivalence_draws: int = integer(
        2, 1, help="random parameter sets per variant x fields", group="equivalence"
    )
    equivalence_sites: int = integer(12, 2, help="L of the equivalence check", group="equivalence")
    equivalence_states: int = integer(6, 2, help="q of the equivalence check", group="equivalence")
    equivalence_sequences: int = integer(
        200, 1, help="random sequences of the equivalence check", group="equivalence"
    )

    def __post_init__(self) -> None:
        # type, range and choice of every field (lists become tuples): the option fields above
        validate(self)
        if self.width % self.transformer_heads:
            raise ValidationError(
                f"width ({self.width}) must be divisible by transformer_heads "
                f"({self.transformer_heads})"
            )
        grids = ("depths", "transformer_dropout", "factored_coupling_l2", "theory_lambdas",
                 "theory_alphas", "scaling_sizes", "scaling_depths")  # fmt: skip
        for name in grids:
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValidationError(f"{name} lists a value twice: {list(values)}")
        if "scaling" in self.stages and len(self.scaling_sizes) < 2:
            raise ValidationError(
                f"scaling_sizes needs at least 2 sizes for a learning curve, got {list(self.scaling_sizes)}"
            )

    @classmethod
    def preset(cls, mode: str = "default", **overrides: Any) -> ReproduceConfig:
        """The built-in settings of ``mode`` (``quick``, ``default``, ``full``) with overrides.

        * ``quick``: a smoke test (small system, few epochs; well under 2 minutes on 2 cores);
        * ``default``: ``L = q = 20``, ``M = 3000``, transformer width 32, 2 training seeds,
          learning curves up to ``M = 10000`` (transformers up to 1000): every run converges
          within about 15 minutes on 2 cores (14 min 17 s measured on an idle one);
        * ``full``: the paper's ``M = 3000`` with width 64, 4 seeds, a regularisation grid per
          depth, learning curves up to ``M = 30000`` for every depth, larger simulations (meant for
          a cluster: ``--executor dask``).
        """
        if mode not in MODES:
            raise ValidationError(f"mode must be one of {MODES}, got {mode!r}")
        base: dict[str, Any] = {"mode": mode}
        if mode == "quick":
            base.update(
                n_sites=6, n_states=4, n_train=300, n_validation=100, n_test=200,
                calibrate=False, beta=1.0, n_chains=50, pilot_sweeps=40,
                depths=(1, 2), width=16, transformer_heads=2, transformer_dropout=(0.0,),
                transformer_epochs=2, transformer_batch_size=100, factored_coupling_l2=(0.0,),
                factored_epochs=20, factored_batch_size=300, patience=3,
                scaling_sizes=(100, 200, 400), scaling_data_seeds=2, scaling_depths=(1,),
                scaling_transformer_max_size=400,
                theory_lambdas=(0.1, 1.0), theory_alphas=(0.5, 2.0, 8.0), theory_curve_points=6,
                simulation_sites=40, simulation_seeds=2, simulation_test=1000,
                equivalence_draws=1, equivalence_sites=5, equivalence_states=3,
                equivalence_sequences=50,
            )  # fmt: skip
        elif mode == "full":
            base.update(
                n_train=3000, width=64, n_validation=1000, n_test=2000, n_chains=400,
                transformer_dropout=(0.0, 0.1, 0.2), transformer_epochs=1000, factored_epochs=200,
                factored_coupling_l2=(0.0, 1e-5, 1e-4), patience=10, n_seeds=4,
                scaling_sizes=(300, 1000, 3000, 10000, 30000), scaling_data_seeds=5,
                scaling_depths=(1, 2, 3, 4), scaling_transformer_max_size=30000,
                theory_lambdas=(0.001, 0.01, 0.1, 1.0), theory_alphas=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0),
                theory_curve_points=40, simulation_sites=1000, simulation_seeds=8,
                simulation_test=20000, equivalence_draws=4,
            )  # fmt: skip
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        """Flat plain-data form (lists for tuples)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReproduceConfig:
        """Build from :meth:`to_dict` output; unknown keys are an error naming them."""
        reject_unknown_keys(data, (f.name for f in dataclasses.fields(cls)), "reproduce option")
        return cls(**dict(data))

    def derived_seed(self, purpose: int) -> int:
        """An integer seed for one purpose (0: data, 1..: stage specs), from ``seed`` by spawning."""
        child = np.random.SeedSequence(self.seed, spawn_key=(purpose,))
        return int(child.generate_state(1, dtype=np.uint32)[0])
