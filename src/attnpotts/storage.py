"""Atomic writing of results: a failed or killed run never leaves a half-written file or folder.

Files are written to a temporary name in the same folder and renamed into place (atomic on POSIX).
Output folders are assembled under a temporary name and renamed when complete. Every output folder
carries the marker file :data:`OUTPUT_MARKER`; ``overwrite`` replaces only a folder with that
marker, so attnpotts never deletes what it did not write. :func:`output_lock` keeps two processes
from writing the same output folder. Files and folders are created with the permissions the
umask allows (as ``open``/``mkdir`` would), not the private ones of ``tempfile``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AttnPottsError

__all__ = [
    "OUTPUT_MARKER",
    "OutputFolderError",
    "OutputLockedError",
    "atomic_output_dir",
    "atomic_savez",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_input_file",
    "check_output_dir",
    "environment_info",
    "inspect_npy",
    "inspect_npz",
    "output_lock",
    "read_bounded",
    "to_jsonable",
]

#: Name of the marker file in every output folder attnpotts writes (JSON: what wrote it, when).
OUTPUT_MARKER = ".attnpotts-output"


class OutputFolderError(AttnPottsError, FileExistsError):
    """An output path cannot be used: not a folder attnpotts wrote, a file, or the current folder."""


class OutputLockedError(AttnPottsError, RuntimeError):
    """Another live process writes into the same output folder."""


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it (else set and restored)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would ignore the user's umask
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths, tuples and dataclasses into JSON-serialisable values."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            return None  # JSON has no NaN/inf; null says "not available"
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (NaN/inf become null)."""
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=False, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def atomic_savez(path: str | os.PathLike[str], **arrays: Any) -> Path:
    """Save arrays to an uncompressed ``.npz`` atomically (exact round trip of dtypes and values)."""
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def check_output_dir(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Check that ``path`` may become an output folder; return it as an absolute path.

    Allowed: a path that does not exist, an empty folder, or (with ``overwrite``) a folder that
    carries :data:`OUTPUT_MARKER`, i.e. one attnpotts wrote.

    Raises:
        OutputFolderError: ``path`` is the current folder or one above it, a file, a folder not
            written by attnpotts (even with ``overwrite``), or a non-empty folder without
            ``overwrite``.
    """
    path = Path(os.path.abspath(path))
    cwd = Path(os.path.abspath(os.getcwd()))
    if path == cwd or path in cwd.parents:
        raise OutputFolderError(
            f"output folder {path} is the current folder (or one above it); attnpotts writes a "
            "new folder and renames it into place, so choose a subfolder, e.g. --out runs/x"
        )
    if path.exists() and not path.is_dir():
        raise OutputFolderError(
            f"output path {path} is a file, not a folder; choose another --out"
        )
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise OutputFolderError(
                    f"output path {path}: {parent} is a file, not a folder; choose another --out"
                )
            break
    if path.is_dir():
        try:
            empty = not any(path.iterdir())
        except PermissionError as exc:
            raise OutputFolderError(
                f"output folder {path} cannot be read ({exc.strerror}); choose another --out"
            ) from exc
        if empty:
            return path
        if not overwrite:
            raise OutputFolderError(
                f"output folder {path} exists and is not empty; choose another --out or pass "
                "--overwrite"
            )
        if not (path / OUTPUT_MARKER).is_file():
            raise OutputFolderError(
                f"output folder {path} was not written by attnpotts (no {OUTPUT_MARKER} file); "
                "--overwrite replaces only attnpotts output folders, so nothing was deleted; "
                "choose another --out, or move the folder away yourself"
            )
    return path


def _marker_text() -> str:
    from datetime import UTC, datetime

    from . import __version__

    doc = {"written_by": "attnpotts", "version": __version__, "pid": os.getpid(),
           "created": datetime.now(UTC).isoformat()}  # fmt: skip
    return json.dumps(doc) + "\n"


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Assemble an output folder under a temporary name; rename it to ``path`` only on success.

    Yields the temporary folder to write into (it already holds :data:`OUTPUT_MARKER`). If the
    block raises (or the process is killed), ``path`` is untouched and the temporary folder is
    removed (or left with a ``.tmp-`` name that no reader mistakes for a result). With
    ``overwrite``, an existing folder is replaced only if it carries the marker.

    Raises:
        OutputFolderError: see :func:`check_output_dir` (checked before and again after the block).
    """
    path = check_output_dir(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would ignore the user's umask
        atomic_write_text(tmp / OUTPUT_MARKER, _marker_text())
        yield tmp
        check_output_dir(path, overwrite=overwrite)  # the folder may have changed meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)
    _fsync_dir(path.parent)


@contextlib.contextmanager
def output_lock(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive lock on output folder ``path`` for the duration of the block.

    The lock is ``flock`` on ``.<name>.lock`` next to ``path`` (the folder itself is replaced as a
    whole, so the lock cannot live inside it); the kernel releases it when the process dies, so a
    killed run never leaves a stale lock. The lock file is removed on release. A file of that name
    that is not an attnpotts lock (which holds a process id, or nothing yet) is never truncated
    or removed: the lock is refused instead.

    Raises:
        OutputLockedError: another live process holds the lock.
        OutputFolderError: the folder or its lock file cannot be created, or a file that is not
            an attnpotts lock has the lock's name.
    """
    import fcntl

    path = Path(os.path.abspath(path))
    lock = path.parent / f".{path.name}.lock"

    def cannot_create(exc: OSError) -> OutputFolderError:  # read-only or virtual file system, ...
        return OutputFolderError(
            f"cannot create output folder {path} ({exc.strerror or exc}); choose another --out"
        )

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot_create(exc) from None
    for _attempt in range(20):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise cannot_create(exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = f" (pid {int(lock.read_text(encoding='ascii').strip() or 0)})"
            raise OutputLockedError(
                f"output folder {path} is being written by another attnpotts process{holder}; "
                "wait for it to finish or choose another --out"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file between our open and flock: retry
    else:  # pragma: no cover - only under a sustained race
        raise OutputLockedError(f"could not take the lock {lock}; another process races for it")
    held = os.pread(fd, 64, 0)
    if held.strip() and not held.strip().isdigit():  # someone else's file: leave it as it is
        os.close(fd)
        raise OutputFolderError(
            f"{lock} exists and is not an attnpotts lock file (those hold a process id); attnpotts "
            "takes that name to lock the output folder: move the file or choose another --out"
        )
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


def check_input_file(path: str | os.PathLike[str], what: str = "an input file") -> Path:
    """Check that ``path`` is an existing regular file (not a folder, device, pipe or socket).

    Raises:
        FileNotFoundError: nothing at ``path``.
        DataFormatError: ``path`` is a folder or a special file (e.g. ``/dev/zero``).
    """
    from .errors import DataFormatError

    p = Path(path)
    try:
        mode = p.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"{what} {p} does not exist") from None
    except OSError as exc:
        raise DataFormatError(f"cannot be read ({exc.strerror}), expected {what}", path=p) from None
    if stat.S_ISDIR(mode):
        raise DataFormatError(f"is a folder, expected {what}", path=p)
    if not stat.S_ISREG(mode):
        raise DataFormatError(
            f"is not a regular file (a device, pipe or socket), expected {what}; copy the data "
            "into a file",
            path=p,
        )
    return p


def read_bounded(path: str | os.PathLike[str], max_bytes: int, *, what: str = "an input file") -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` bytes (never reads more).

    Raises:
        FileNotFoundError: nothing at ``path``.
        DataFormatError: a folder or special file, or larger than ``max_bytes``.
    """
    from .errors import DataFormatError

    p = check_input_file(path, what)
    with open(p, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise DataFormatError(
            f"larger than {max_bytes} bytes, too large for {what}; check that this is the right file",
            path=p,
        )
    return data


def _npy_header(fh: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """Shape and dtype of a ``.npy`` stream; any malformed header is a ``ValueError``."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unknown .npy version {version}")
        return tuple(int(n) for n in shape), np.dtype(dtype)
    except OSError:
        raise
    except Exception as exc:  # numpy's header parser raises ValueError, SyntaxError, TokenError...
        raise ValueError(f"malformed .npy header ({type(exc).__name__}: {exc})") from None


def inspect_npy(path: str | os.PathLike[str]) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """Shape and dtype of a ``.npy`` file from its header (nothing else is read).

    Raises:
        FileNotFoundError: nothing at ``path``.
        DataFormatError: not a ``.npy`` file, or an array of Python objects.
    """
    from .errors import DataFormatError

    p = check_input_file(path, "a .npy file")
    try:
        with open(p, "rb") as fh:
            shape, dtype = _npy_header(fh)
    except (ValueError, OSError, EOFError, SyntaxError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"not a readable .npy file ({exc})", path=p) from None
    if dtype.hasobject:
        raise DataFormatError("the array holds Python objects (pickles are never loaded)", path=p)
    return shape, dtype


def inspect_npz(path: str | os.PathLike[str]) -> dict[str, tuple[tuple[int, ...], np.dtype[Any]]]:
    """Shape and dtype of every array of an ``.npz`` file, read from the headers only.

    Lets a loader check sizes and dtypes *before* it allocates anything (a crafted header may
    declare terabytes). Object arrays (pickles) are refused.

    Raises:
        FileNotFoundError: nothing at ``path``.
        DataFormatError: not a readable ``.npz`` file, or an entry that is not a plain array.
    """
    import zipfile

    from .errors import DataFormatError

    p = check_input_file(path, "an .npz file")
    out: dict[str, tuple[tuple[int, ...], np.dtype[Any]]] = {}
    try:
        with zipfile.ZipFile(p) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise DataFormatError(f"entry {info.filename!r} is not a .npy array", path=p)
                with zf.open(info) as fh:
                    shape, dtype = _npy_header(fh)
                if dtype.hasobject:
                    raise DataFormatError(
                        f"array {info.filename[:-4]!r} holds Python objects (pickles are never "
                        "loaded)",
                        path=p,
                    )
                out[info.filename[:-4]] = (shape, dtype)
    except DataFormatError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, KeyError,
            RuntimeError, NotImplementedError, UnicodeDecodeError, SyntaxError) as exc:  # fmt: skip
        raise DataFormatError(f"not a readable .npz file ({type(exc).__name__}: {exc})", path=p) from None
    except Exception as exc:  # zlib.error and other decompressor errors
        import zlib

        if isinstance(exc, zlib.error):
            raise DataFormatError(f"corrupt compressed .npz entry ({exc})", path=p) from None
        raise
    return out


def environment_info() -> dict[str, Any]:
    """Versions of Python, attnpotts and its main dependencies, and the thread counts in effect
    (the order of parallel sums), for run manifests."""
    from .threads import thread_counts

    info: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("attnpotts", "numpy", "scipy", "numba", "torch", "dask", "distributed", "gemmi"):
        try:
            info[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            info[pkg] = None
    info["threads"] = thread_counts()
    return info
