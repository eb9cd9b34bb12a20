"""Results store: one folder per run, named by the run's config hash, written atomically.

Layout of ``<root>/<run_id>/`` (``run_id = <task>-<12 hex digits>``, see
:attr:`~attnpotts.experiments.RunSpec.run_id`):

* ``config.json``: task, parameters, seed (entropy and spawn key), config hash, index;
* ``environment.json``: Python, attnpotts and dependency versions of the worker that computed it;
* ``timings.json``: start/end (UTC), wall and CPU seconds, worker host and pid;
* ``metrics.json``: the task's metrics;
* ``arrays.npz`` (if the task returned arrays) and ``figures/<name>.png`` (if it returned figures).

Each folder is assembled under a temporary name and renamed into place
(:func:`attnpotts.storage.atomic_output_dir`), so a folder named like a run is always complete: a
killed sweep leaves finished runs intact and nothing half-written. Resume is therefore "skip every
run whose folder exists". Temporary folders (``.<run_id>.tmp-*``) of killed runs are removed by
:meth:`ResultsStore.remove_stale` while the store's lock is held.

Only one sweep writes into a store at a time: :meth:`ResultsStore.lock` takes ``.lock`` (host and
pid inside), and takes over a lock whose process on this host is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AttnPottsError, DataFormatError
from ..storage import atomic_output_dir, atomic_savez, atomic_write_bytes, atomic_write_json
from .runner import RunResult
from .spec import RunSpec

__all__ = ["ResultsStore", "StoreLockedError", "StoredRun"]

_LOCK = ".lock"
#: A lock file without readable content younger than this is being written, not abandoned.
_FRESH_LOCK_S = 10.0


class StoreLockedError(AttnPottsError, RuntimeError):
    """Another live process holds the results store's lock."""


@dataclass(frozen=True)
class StoredRun:
    """A finished run read back from the store (arrays and figures are loaded on demand)."""

    path: Path
    run: RunSpec
    metrics: dict[str, Any]
    timings: dict[str, Any]
    environment: dict[str, Any]

    def arrays(self) -> dict[str, np.ndarray]:
        """The run's arrays (empty if it stored none)."""
        f = self.path / "arrays.npz"
        if not f.exists():
            return {}
        with np.load(f, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def figure_paths(self) -> dict[str, Path]:
        """``{name: path}`` of the run's PNG figures."""
        d = self.path / "figures"
        return {p.stem: p for p in sorted(d.glob("*.png"))} if d.is_dir() else {}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataFormatError(
            "missing file in a run folder; the store was modified by hand, delete the folder to "
            "recompute it",
            path=path,
        ) from exc
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"invalid JSON ({exc})", path=path) from exc


class ResultsStore:
    """A folder of finished runs (see the module docstring for the layout)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.root)!r})"

    def path_for(self, run: RunSpec) -> Path:
        """Folder of ``run`` (whether or not it exists)."""
        return self.root / run.run_id

    def is_complete(self, run: RunSpec) -> bool:
        """Whether ``run`` has a finished folder (folders only appear complete, by renaming)."""
        return (self.path_for(run) / "config.json").is_file()

    def write(self, result: RunResult) -> Path:
        """Write a finished run atomically; returns its folder.

        Raises:
            FileExistsError: the run's folder exists already (finished runs are never replaced).
        """
        run = result.run
        path = self.path_for(run)
        with atomic_output_dir(path) as tmp:
            atomic_write_json(tmp / "config.json", run.to_dict())
            atomic_write_json(tmp / "environment.json", dict(result.environment))
            atomic_write_json(tmp / "timings.json", dict(result.timings))
            atomic_write_json(tmp / "metrics.json", dict(result.output.metrics))
            if result.output.arrays:
                atomic_savez(tmp / "arrays.npz", **dict(result.output.arrays))
            for name, png in result.output.figures.items():
                atomic_write_bytes(tmp / "figures" / f"{name}.png", png)
        return path

    def load(self, run: RunSpec) -> StoredRun:
        """Read back a finished run.

        Raises:
            FileNotFoundError: the run has not been computed.
            DataFormatError: the folder's config does not match ``run`` or a file is corrupt.
        """
        path = self.path_for(run)
        if not path.is_dir():
            raise FileNotFoundError(f"run {run.run_id} is not in {self.root}; run the experiment")
        stored = self._load_path(path)
        if stored.run.config_hash != run.config_hash:
            raise DataFormatError(
                f"folder holds a different run (hash {stored.run.config_hash}, expected "
                f"{run.config_hash})",
                path=path,
            )
        return stored

    def _load_path(self, path: Path) -> StoredRun:
        config = _read_json(path / "config.json")
        stored_run = RunSpec.from_dict(config)
        if stored_run.run_id != path.name:
            raise DataFormatError(
                f"folder name does not match its config (run id {stored_run.run_id})", path=path
            )
        return StoredRun(
            path=path,
            run=stored_run,
            metrics=_read_json(path / "metrics.json"),
            timings=_read_json(path / "timings.json"),
            environment=_read_json(path / "environment.json"),
        )

    def completed(self) -> list[StoredRun]:
        """Every finished run in the store, sorted by folder name."""
        if not self.root.is_dir():
            return []
        return [
            self._load_path(p)
            for p in sorted(self.root.iterdir())
            if p.is_dir() and not p.name.startswith(".") and (p / "config.json").is_file()
        ]

    def stale_temporaries(self) -> list[Path]:
        """Temporary folders left by killed writers (``.<name>.tmp-*``, ``.<name>.old-*``)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p
            for p in self.root.iterdir()
            if p.is_dir() and p.name.startswith(".") and (".tmp-" in p.name or ".old-" in p.name)
        )

    def remove_stale(self) -> list[Path]:
        """Delete :meth:`stale_temporaries` (call only while holding :meth:`lock`)."""
        stale = self.stale_temporaries()
        for p in stale:
            shutil.rmtree(p, ignore_errors=True)
        return stale

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's lock for the duration of the block.

        Raises:
            StoreLockedError: a live process holds it (on another host: any holder; remove
                ``<root>/.lock`` by hand if that process is known to be dead).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        lock = self.root / _LOCK
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        for _attempt in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._lock_holder(lock)
                if holder is None and _age_s(lock) < _FRESH_LOCK_S:
                    holder = {"host": "?", "pid": "? (lock being written)"}
                if holder is not None and _alive(holder):
                    raise StoreLockedError(
                        f"results store {self.root} is in use by pid {holder.get('pid')} on "
                        f"{holder.get('host')}; wait for it, or delete {lock} if that process is "
                        "gone"
                    ) from None
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock)  # the holder died (e.g. SIGKILL): take over
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            break
        else:  # pragma: no cover - only under a race with another taker
            raise StoreLockedError(f"could not take the lock {lock}; another process races for it")
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)

    @staticmethod
    def _lock_holder(lock: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(lock.read_text())
        except (OSError, json.JSONDecodeError):
            return None  # an empty/garbled lock is from a writer killed mid-write
        return data if isinstance(data, dict) else None


def _age_s(path: Path) -> float:
    import time

    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _alive(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # cannot check a process on another host: assume alive
    try:
        os.kill(int(holder["pid"]), 0)
    except (ProcessLookupError, KeyError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True
