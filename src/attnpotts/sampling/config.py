"""Options of ``attnpotts sample`` (:class:`SampleConfig`), importable without numba.

Why a module of their own: ``attnpotts sample --help`` and every check of a bad option are built
from these fields; the samplers they configure (numba kernels) load only to sample.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import DataFormatError, ValidationError, reject_unknown_keys
from ..options import choice, integer, number, text

if TYPE_CHECKING:
    from ..potts.synthetic import GeneralizedPottsSpec

__all__ = ["SampleConfig"]

#: Options that may be ``None``; in TOML (which has no null) they are written ``"none"``.
_OPTIONAL = ("model_file", "beta", "target_distance", "burn_in", "thin")
#: ``--help`` groups of the options.
_MODEL, _TEMPERATURE, _SAMPLING = "model", "temperature", "sampling"


@dataclass(frozen=True)
class SampleConfig:
    """Everything ``attnpotts sample`` does, as one serialisable value (TOML/JSON: flat keys).

    Model (ignored when ``model_file`` is given): see :class:`~attnpotts.potts.GeneralizedPottsSpec`.
    The library default is ``L = 20``, ``q = 20``, a sparse random graph of mean degree 3 with
    ``N(0, 1)`` weights and a symmetric Gaussian ``Ucol``; ``beta`` is calibrated so that sampled
    sequences have mean pairwise normalised Hamming distance ``target_distance = 0.88``, where the
    optimal masked-LM loss (mean conditional entropy) is 1-2 nats for this ensemble (measured:
    1.1-1.8 nats over seeds 0-2), a loss large enough that finite-sample noise stays small
    against it (``docs/experiments.md``).

    Attributes:
        n_sites, n_states, site, mean_degree, site_scale, colour, colour_scale, colour_diagonal:
            the model recipe.
        model_file: a saved PottsModel (``.npz``) to sample instead of a random one.
        beta: inverse temperature, used when ``target_distance`` is ``None`` (``None``: the
            beta saved in ``model_file``, or 1).
        target_distance: calibrate beta to this mean pairwise Hamming distance (``None``: use beta).
        beta_max: largest beta the calibration tries.
        n_train, n_test: sizes of the two splits.
        method: ``"gibbs"`` (independent chains) or ``"parallel_tempering"`` (ladder from 0 to beta).
        rule: ``"gibbs"`` (heat-bath) or ``"metropolis"`` single-site updates.
        sweep: ``"sequential"`` or ``"random"`` site order.
        n_chains: independent chains (replica sets for parallel tempering).
        n_temperatures: ladder size for parallel tempering.
        pilot_sweeps: sweeps of the pilot run that measures the autocorrelation time.
        burn_in: sweeps discarded (``None``: ``20 tau`` after the pilot).
        thin: keep every ``thin``-th sweep (``None``: ``ceil(2 tau)``).
        dtype: ``"float64"`` or ``"float32"`` couplings in the kernel.
        seed: seed of everything (model, calibration, sampling, split).
    """

    n_sites: int = integer(20, 2, group=_MODEL, help="L sites")
    n_states: int = integer(20, 2, group=_MODEL, help="q states")
    site: Literal["sparse", "dense"] = choice(
        "sparse", ("sparse", "dense"), group=_MODEL, help="Jsite ensemble"
    )
    mean_degree: float = number(3.0, 0, group=_MODEL, help="partners per site of the sparse graph")
    site_scale: float = number(1.0, 0, group=_MODEL, help="std of the site weights")
    colour: Literal["gaussian", "identity", "ferromagnetic"] = choice(
        "gaussian", ("gaussian", "identity", "ferromagnetic"), group=_MODEL, help="Ucol ensemble"
    )
    colour_scale: float = number(1.0, 0, group=_MODEL, help="std of the Gaussian part of Ucol")
    colour_diagonal: float = number(
        1.0, group=_MODEL, help="diagonal added to Ucol for colour ferromagnetic"
    )
    model_file: str | None = text(
        None, "path", none=True, group=_MODEL,
        help="sample this saved PottsModel (.npz) instead of a random one",
    )
    beta: float | None = number(
        None, 0, none=True, group=_TEMPERATURE,
        help="inverse temperature when target_distance is none (default 1)",
    )
    target_distance: float | None = number(
        0.88, 0, 1, low_open=True, high_open=True, none=True, special=("none",),
        group=_TEMPERATURE,
        help="calibrate beta to this mean pairwise Hamming distance, or 'none'",
    )
    beta_max: float = number(
        5.0, 0, low_open=True, group=_TEMPERATURE, help="largest beta the calibration tries"
    )
    n_train: int = integer(3000, 1, group=_SAMPLING, help="training sequences")
    n_test: int = integer(1000, 0, group=_SAMPLING, help="test sequences")
    method: Literal["gibbs", "parallel_tempering"] = choice(
        "gibbs", ("gibbs", "parallel_tempering"), group=_SAMPLING,
        help="independent chains or parallel tempering",
    )
    rule: Literal["gibbs", "metropolis"] = choice(
        "gibbs", ("gibbs", "metropolis"), group=_SAMPLING, help="single-site update (gibbs = heat-bath)"
    )
    sweep: Literal["sequential", "random"] = choice(
        "sequential", ("sequential", "random"), group=_SAMPLING, help="site order"
    )
    n_chains: int = integer(200, 1, group=_SAMPLING, help="independent chains")
    n_temperatures: int = integer(12, 2, group=_SAMPLING, help="ladder size for parallel tempering")
    pilot_sweeps: int = integer(
        400, 8, group=_SAMPLING, help="pilot run measuring the autocorrelation time"
    )
    burn_in: int | None = integer(
        None, 0, none=True, group=_SAMPLING, help="burn-in sweeps (default: 20 autocorrelation times)"
    )
    thin: int | None = integer(
        None, 1, none=True, group=_SAMPLING, help="keep every THIN-th sweep (default: 2 tau)"
    )
    dtype: Literal["float64", "float32"] = choice(
        "float64", ("float64", "float32"), group=_SAMPLING, help="kernel precision"
    )
    seed: int = integer(0, 0, 2**63 - 1, flag="", help="seed of everything")

    def __post_init__(self) -> None:
        def count(name: str, minimum: int, allow_none: bool = False) -> None:
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise ValidationError(f"{name} must be an integer >= {minimum}, got {v!r}")

        for name, minimum in (
            ("n_train", 1), ("n_test", 0), ("n_chains", 1), ("n_temperatures", 2),
            ("pilot_sweeps", 8), ("seed", 0),
        ):  # fmt: skip
            count(name, minimum)
        count("burn_in", 0, allow_none=True)
        count("thin", 1, allow_none=True)
        if self.model_file is None:
            self.model_spec()  # validates the recipe
        if self.beta is not None and (not np.isfinite(self.beta) or self.beta < 0):
            raise ValidationError(f"beta must be finite and >= 0, got {self.beta}")
        if self.target_distance is not None and not 0 < self.target_distance < 1:
            raise ValidationError(
                f"target_distance must lie in (0, 1) (normalised Hamming distance) or be None, "
                f"got {self.target_distance}"
            )
        if not np.isfinite(self.beta_max) or self.beta_max <= 0:
            raise ValidationError(f"beta_max must be finite and > 0, got {self.beta_max}")
        for name, allowed in (
            ("method", ("gibbs", "parallel_tempering")),
            ("rule", ("gibbs", "metropolis")),
            ("sweep", ("sequential", "random")),
            ("dtype", ("float64", "float32")),
        ):
            if getattr(self, name) not in allowed:
                raise ValidationError(
                    f"{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )

    def model_spec(self) -> GeneralizedPottsSpec:
        """The model recipe."""
        from ..potts.synthetic import GeneralizedPottsSpec

        return GeneralizedPottsSpec(
            self.n_sites, self.n_states, self.site, self.mean_degree, self.site_scale,
            self.colour, self.colour_scale, self.colour_diagonal,
            1.0 if self.beta is None else self.beta,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (``None`` values included)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SampleConfig:
        """Build from a dict; unknown keys are an error that lists the known ones."""
        reject_unknown_keys(data, (f.name for f in dataclasses.fields(cls)), "sample option")
        values = dict(data)
        for key in _OPTIONAL:
            if isinstance(values.get(key), str) and values[key].lower() == "none":
                values[key] = None
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> SampleConfig:
        """Read a flat TOML file of options."""
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise DataFormatError(f"invalid TOML ({exc})", path=path) from exc
        return cls.from_dict(data)

    def to_toml(self) -> str:
        """TOML text; ``None`` (which TOML lacks) is written as the string ``"none"``."""
        import tomli_w

        return tomli_w.dumps({k: "none" if v is None else v for k, v in self.to_dict().items()})
