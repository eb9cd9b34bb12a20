"""The ``sample`` workflow: sample a synthetic data set and write its folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from ..sampling.config import SampleConfig
from .resources import memory_limit

if TYPE_CHECKING:
    from ..sampling.dataset import SampledDataset

__all__ = ["SampleOptions", "sample"]


@dataclass(frozen=True)
class SampleOptions(SampleConfig):
    """Every option of ``attnpotts sample``: the :class:`SampleConfig` fields and the memory limit.

    ``target_distance = "none"`` (the TOML and flag spelling) means ``None``: sample at ``beta``.
    """

    memory_limit_gb: float = memory_limit()

    def __post_init__(self) -> None:
        if self.target_distance == "none":
            object.__setattr__(self, "target_distance", None)
        super().__post_init__()

    def sample_config(self) -> SampleConfig:
        """The :class:`SampleConfig` part of these options."""
        return SampleConfig(**{f.name: getattr(self, f.name) for f in fields(SampleConfig)})


def sample(
    options: SampleOptions,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> SampledDataset:
    """Sample the data set of ``options``; with ``out``, write its folder (atomically).

    ``progress(stage, done, total)`` is called during calibration and sampling.
    """
    if out is not None:
        out = Path(out)
        if out.exists() and any(out.iterdir()) and not overwrite:
            # fail before spending time sampling
            raise FileExistsError(
                f"output folder {out} exists and is not empty; choose another --out or pass --overwrite"
            )
    from ..sampling.dataset import sample_dataset  # numba: loaded only to sample (not for --help)

    ds = sample_dataset(options.sample_config(), progress=progress)
    if out is not None:
        ds.save(out, overwrite=overwrite)
    return ds
