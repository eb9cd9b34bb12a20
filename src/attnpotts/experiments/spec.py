"""Frozen experiment specifications: a spec expands into runs, each with its own derived seed.

An :class:`ExperimentSpec` names a registered task, the parameters shared by every run, a grid of
swept parameters and a number of seeds (replicates). :meth:`ExperimentSpec.expand` turns it into a
list of :class:`RunSpec`, one per grid point and replicate, in a fixed order:

* the grid is the Cartesian product of the ``sweep`` values, keys in the order given (the last key
  varies fastest), the replicate index varies fastest of all;
* run ``k`` of the expansion gets the seed ``spawn_seeds(spec.seed, n_runs)[k]``, i.e. the child
  ``SeedSequence(spec.seed, spawn_key=(k,))``. Seeds therefore depend only on the spec, never on
  the executor, the number of workers or the order in which runs finish.

A run is identified by a stable hash of its task, parameters and seed (:attr:`RunSpec.run_id`); the
results store names its folder after it, so a run that was already computed is recognised on resume
whatever experiment produced it.

Parameter values are restricted to what both TOML and JSON represent exactly: booleans, integers,
floats, strings, and (nested) lists and tables of those. ``None`` is not allowed (TOML has no null).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataFormatError, ValidationError, reject_unknown_keys
from ..random import spawn_seeds
from ..storage import atomic_write_text

__all__ = [
    "ExperimentSpec",
    "RunSpec",
    "freeze",
    "load_spec",
    "thaw",
]

#: Bumped when the meaning of a run's identity (what is hashed) changes.
RUN_ID_VERSION = 1
#: Hex digits of the SHA-256 kept in a run id (48 bits: collisions are negligible for sweeps).
_HASH_DIGITS = 12
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


class FrozenDict(Mapping[str, Any]):
    """A read-only, hashable, picklable mapping (parameters of frozen specs)."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data or {})
        self._hash: int | None = None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        # consistent with __eq__ (1 == 1.0 and their hashes agree; nested values are hashable)
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return bool(thaw(self) == thaw(other))  # tuples and lists compare equal here
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (self._data,))


def freeze(value: Any, *, where: str = "params") -> Any:
    """Return a deeply immutable copy of a TOML/JSON-like value (mappings -> read-only, lists -> tuples).

    Raises:
        ValidationError: a value is ``None``, a non-finite float, or of an unsupported type; the
            message names the key path.
    """
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        if not math.isfinite(f):
            raise ValidationError(f"{where} = {f}: parameters must be finite numbers")
        return f
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(f"{where}: keys must be strings, got {k!r}")
            out[k] = freeze(v, where=f"{where}.{k}")
        return FrozenDict(out)
    if isinstance(value, list | tuple):
        return tuple(freeze(v, where=f"{where}[{i}]") for i, v in enumerate(value))
    if value is None:
        raise ValidationError(
            f"{where} is None: TOML cannot store null; leave the key out to use the task's default"
        )
    raise ValidationError(
        f"{where} has type {type(value).__name__}; parameters must be bool, int, float, str, "
        "or lists/tables of those"
    )


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`: plain ``dict`` and ``list`` (for JSON, TOML and task code)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


def _canonical_json(obj: Any) -> str:
    return json.dumps(thaw(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment: a task, its parameters and its seed.

    Attributes:
        task: name of a registered task (:func:`attnpotts.experiments.register_task`).
        params: read-only parameters passed to the task.
        seed_entropy: entropy of the experiment's root ``SeedSequence`` (the spec's ``seed``).
        spawn_key: the child's spawn key, ``(index,)`` for run ``index`` of the expansion.
        index: position in the expansion (for ordering only; not part of the identity).
        replicate: replicate number within its grid point.
        experiment: name of the experiment that produced it (not part of the identity).
    """

    task: str
    params: Mapping[str, Any]
    seed_entropy: int
    spawn_key: tuple[int, ...]
    index: int = 0
    replicate: int = 0
    experiment: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.task, str) or not _NAME_RE.match(self.task):
            raise ValidationError(
                f"task name {self.task!r} must start with a letter and contain only letters, "
                "digits, '_', '.', '-'"
            )
        object.__setattr__(self, "params", freeze(self.params))
        if int(self.seed_entropy) < 0:
            raise ValidationError(f"seed must be a non-negative integer, got {self.seed_entropy}")
        object.__setattr__(self, "seed_entropy", int(self.seed_entropy))
        object.__setattr__(self, "spawn_key", tuple(int(k) for k in self.spawn_key))

    @property
    def seed_sequence(self) -> np.random.SeedSequence:
        """The run's own ``SeedSequence`` (the only source of randomness of the run)."""
        return np.random.SeedSequence(self.seed_entropy, spawn_key=self.spawn_key)

    def identity(self) -> dict[str, Any]:
        """What defines the run (and is hashed): task, parameters, seed, id version."""
        return {
            "run_id_version": RUN_ID_VERSION,
            "task": self.task,
            "params": thaw(self.params),
            "seed": {"entropy": self.seed_entropy, "spawn_key": list(self.spawn_key)},
        }

    @property
    def config_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`identity`."""
        return hashlib.sha256(_canonical_json(self.identity()).encode()).hexdigest()

    @property
    def run_id(self) -> str:
        """Stable folder name ``<task>-<first 12 hex digits of the config hash>``."""
        return f"{self.task}-{self.config_hash[:_HASH_DIGITS]}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form written as the run's ``config.json``."""
        out = self.identity()
        out.update(
            run_id=self.run_id,
            config_hash=self.config_hash,
            index=self.index,
            replicate=self.replicate,
            experiment=self.experiment,
        )
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        """Rebuild from :meth:`to_dict` output (checks the stored hash if there is one)."""
        try:
            run = cls(
                task=data["task"],
                params=data["params"],
                seed_entropy=data["seed"]["entropy"],
                spawn_key=tuple(data["seed"]["spawn_key"]),
                index=int(data.get("index", 0)),
                replicate=int(data.get("replicate", 0)),
                experiment=str(data.get("experiment", "")),
            )
        except (KeyError, TypeError) as exc:
            raise DataFormatError(f"run config lacks or mangles a field ({exc!r})") from exc
        if int(data.get("run_id_version", RUN_ID_VERSION)) != RUN_ID_VERSION:
            raise DataFormatError(
                f"run config has run_id_version {data.get('run_id_version')}, this attnpotts "
                f"writes {RUN_ID_VERSION}; rerun the experiment into a fresh store"
            )
        stored = data.get("config_hash")
        if stored is not None and stored != run.config_hash:
            raise DataFormatError(
                f"run config hash {stored} does not match its content ({run.config_hash}); "
                "the file was edited or corrupted"
            )
        return run


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValidationError(
            f"{what} {name!r} must start with a letter and contain only letters, digits, '_', "
            "'.', '-'"
        )


@dataclass(frozen=True)
class ExperimentSpec:
    """A sweep of one task: shared ``params``, a ``sweep`` grid and ``n_seeds`` replicates.

    Attributes:
        name: experiment name (letters, digits, ``_.-``).
        task: registered task name.
        seed: root seed; run ``k`` gets ``SeedSequence(seed).spawn(n_runs)[k]``.
        params: parameters shared by all runs.
        sweep: ``{key: values}``; every combination becomes a grid point and its value overrides
            ``params[key]``. Dotted keys (``"model.n_layers"``) address nested tables.
        n_seeds: replicates per grid point, each with its own derived seed.
        description: free text kept with the spec.
    """

    name: str
    task: str
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    sweep: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    n_seeds: int = 1
    description: str = ""

    def __post_init__(self) -> None:
        _check_name(self.name, "experiment name")
        _check_name(self.task, "task name")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise ValidationError(f"seed must be a non-negative integer, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        if isinstance(self.n_seeds, bool) or not isinstance(self.n_seeds, int) or self.n_seeds < 1:
            raise ValidationError(f"n_seeds must be an integer >= 1, got {self.n_seeds!r}")
        object.__setattr__(self, "params", freeze(self.params))
        sweep = freeze(self.sweep, where="sweep")
        for key, values in sweep.items():
            if not isinstance(values, tuple) or not values:
                raise ValidationError(
                    f"sweep.{key} must be a non-empty list of values, got {thaw(values)!r}"
                )
            if len({_canonical_json(v) for v in values}) != len(values):
                raise ValidationError(f"sweep.{key} lists a value twice: {thaw(values)!r}")
            _set_dotted(thaw(self.params), key, values[0])  # checks the path is usable
        object.__setattr__(self, "sweep", sweep)

    @property
    def n_runs(self) -> int:
        """Number of runs of the expansion (grid size times ``n_seeds``)."""
        return math.prod(len(v) for v in self.sweep.values()) * self.n_seeds

    def grid(self) -> list[dict[str, Any]]:
        """The grid points, each ``{sweep key: value}``, in expansion order."""
        keys = list(self.sweep)
        return [
            dict(zip(keys, combo, strict=True))
            for combo in itertools.product(*(self.sweep[k] for k in keys))
        ]

    def expand(self) -> list[RunSpec]:
        """All runs, in expansion order, each with its derived seed (see the module docstring)."""
        seeds = spawn_seeds(self.seed, self.n_runs)
        runs: list[RunSpec] = []
        for point in self.grid():
            params = thaw(self.params)
            for key, value in point.items():
                _set_dotted(params, key, thaw(value))
            for rep in range(self.n_seeds):
                k = len(runs)
                ss = seeds[k]
                runs.append(
                    RunSpec(
                        task=self.task,
                        params=params,
                        seed_entropy=int(ss.entropy),  # type: ignore[arg-type]
                        spawn_key=tuple(ss.spawn_key),
                        index=k,
                        replicate=rep,
                        experiment=self.name,
                    )
                )
        return runs

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (the TOML and JSON layout)."""
        return {
            "name": self.name,
            "task": self.task,
            "seed": self.seed,
            "n_seeds": self.n_seeds,
            "description": self.description,
            "params": thaw(self.params),
            "sweep": thaw(self.sweep),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: object = None) -> ExperimentSpec:
        """Build from :meth:`to_dict` output; unknown keys are an error naming them."""
        known = {"name", "task", "seed", "n_seeds", "description", "params", "sweep"}
        where = f"{source}: " if source is not None else ""
        reject_unknown_keys(data, known, "experiment key", where=where)
        missing = sorted({"name", "task"} - set(data))
        if missing:
            raise ValidationError(f"{where}experiment spec lacks {', '.join(missing)}")
        sweep = data.get("sweep", {})
        if not isinstance(sweep, Mapping):
            raise ValidationError(f"{where}sweep must be a table of lists, got {sweep!r}")
        return cls(
            name=data["name"],
            task=data["task"],
            seed=data.get("seed", 0),
            params=data.get("params", {}),
            sweep={k: tuple(v) if isinstance(v, list | tuple) else v for k, v in sweep.items()},
            n_seeds=data.get("n_seeds", 1),
            description=str(data.get("description", "")),
        )

    def to_toml(self) -> str:
        """TOML text that :func:`load_spec` / :meth:`from_toml` read back to an equal spec."""
        import tomli_w

        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str, *, source: object = None) -> ExperimentSpec:
        """Parse TOML text (see :meth:`to_dict` for the layout)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DataFormatError(f"invalid TOML ({exc})", path=source) from exc
        return cls.from_dict(data, source=source)

    def dump(self, path: str | os.PathLike[str]) -> Path:
        """Write the spec as TOML, atomically."""
        return atomic_write_text(path, self.to_toml())


def load_spec(path: str | os.PathLike[str]) -> ExperimentSpec:
    """Read an :class:`ExperimentSpec` from a TOML file."""
    path = Path(path)
    return ExperimentSpec.from_toml(path.read_text(encoding="utf-8"), source=path)


def _set_dotted(params: dict[str, Any], key: str, value: Any) -> None:
    """Set ``params[a][b] = value`` for ``key = "a.b"``, creating tables on the way."""
    parts = key.split(".")
    if not all(parts):
        raise ValidationError(f"sweep key {key!r} has an empty component")
    node = params
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValidationError(
                f"sweep key {key!r}: params.{part} is {child!r}, not a table, so it cannot hold "
                f"{parts[-1]!r}"
            )
        node = child
    node[parts[-1]] = value
