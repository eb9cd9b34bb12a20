"""Shared CLI plumbing: common options, config resolution, typed option checks, exit codes.

Common options: ``--config FILE.toml``, ``--seed``, ``--out``, ``--overwrite``,
``--memory-limit-gb``, ``--no-progress`` (and ``--device``, ``--threads``).
The rule for every subcommand: defaults < values in ``--config`` < flags given on the command line.
Every value, from either source, is checked against the command's options class (typed fields of
:mod:`attnpotts.options`) before any work. :func:`run_command` runs a parsed command: it
checks ``--out``, holds the output lock, and turns every error into one line on stderr and an exit
code of :data:`EXIT_CODES` (documented in ``docs/errors.md``), never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import tomllib
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import (
    AttnPottsError,
    DataFormatError,
    DivergenceError,
    ResourceLimitError,
    ValidationError,
)

__all__ = [
    "DEBUG_ENV",
    "DEFAULT_MEMORY_LIMIT_GB",
    "EXIT_CODES",
    "MAX_CONFIG_BYTES",
    "add_common_arguments",
    "check_device",
    "exit_code_for",
    "memory_limit_bytes",
    "print_warnings",
    "read_config_file",
    "resolve_config",
    "resolve_options",
    "run_command",
]

from ..workflows.resources import DEFAULT_MEMORY_LIMIT_GB

#: Largest ``--config`` file read (bytes); a TOML options file is a few hundred bytes.
MAX_CONFIG_BYTES = 1 << 20

#: Set this environment variable to 1 to get the traceback of an unexpected error (a bug).
DEBUG_ENV = "ATTNPOTTS_DEBUG"

#: Exit status of ``attnpotts`` by outcome (see ``docs/errors.md``).
EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "not_converged": 1,
    "bad_input": 2,
    "diverged": 3,
    "out_of_memory": 4,
    "io_error": 5,
    "locked": 6,
    "bug": 70,
    "interrupted": 130,
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` layout of every command: a one-paragraph text (the description) is wrapped to
    the terminal's width; a text with line breaks (the examples) is kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


def add_common_arguments(
    parser: argparse.ArgumentParser,
    *,
    default_out: str | None = None,
    device: bool = False,
    threads: bool = True,
) -> None:
    """Add ``--config``, ``--seed``, ``--out``, ``--overwrite``, ``--memory-limit-gb``,
    ``--no-progress`` (and ``--device``, ``--threads``) to ``parser``."""
    parser.add_argument("--config", type=Path, help="TOML file of options (flags override it)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None if default_out is None else Path(default_out),
        required=default_out is None,
        help="output folder (written atomically)"
        + (f"; default {default_out}" if default_out else ""),
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out folder written by attnpotts (others are never deleted)",
    )
    parser.add_argument(
        "--memory-limit-gb",
        dest="memory_limit_gb",
        type=float,
        default=None,
        help="refuse work whose estimated memory is above this many GiB "
        f"(default {DEFAULT_MEMORY_LIMIT_GB:g})",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    if device:
        parser.add_argument(
            "--device", default=None, help="torch device: cpu (default), cuda, cuda:1, ..."
        )
    if threads:
        from ..options import thread_count

        spec = thread_count().metadata["attnpotts.option"]
        parser.add_argument(
            "--threads", type=int, default=None, metavar=spec.metavar, help=spec.help
        )


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML options file (bounded read, UTF-8); every failure is a clean error naming it.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: not a regular file, larger than :data:`MAX_CONFIG_BYTES`, not UTF-8, or
            not valid TOML.
    """
    from ..alignment.io import read_bounded

    path = Path(path)
    raw = read_bounded(path, MAX_CONFIG_BYTES, what="a TOML options file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"not UTF-8 text (byte {exc.start}); save the options file as UTF-8", path=path
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataFormatError(f"invalid TOML ({exc})", path=path) from exc


def resolve_config(
    args: argparse.Namespace, cls: type, *, base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Merge defaults, the ``--config`` TOML file and explicitly given flags.

    ``cls`` is a command's options class (:mod:`attnpotts.options` fields: their names are the TOML
    keys, their specs check every value, with the same message for a flag and a TOML key; ``base``
    overrides its defaults, e.g. a preset). Unknown TOML keys are an error naming the file and the
    key; a flag the user did not type (``None``) leaves the file's value. ``device`` is checked
    against the machine; the memory limit is resolved onto ``args.memory_limit_gb``; ``threads`` (a
    command with ``--threads``) is checked and applied at once (:func:`_apply_threads`), before the
    command loads torch or numba; deprecated spellings are kept on ``args`` for
    :func:`run_command` to note.
    """
    from ..options import option_specs
    from ..options.sources import SOURCES_ATTR, from_sources
    from ..options.spec import defaults as field_defaults
    from ..workflows.resources import DEFAULT_MEMORY_LIMIT_GB

    values = {**field_defaults(cls), **(base or {})}
    known = set(option_specs(cls)) | {"seed", "memory_limit_gb"} | _threads_key(args)
    file_values: dict[str, Any] = {}
    path: Path | None = None
    if getattr(args, "config", None) is not None:
        path = Path(args.config)
        file_values = read_config_file(path)
    flags = {k: getattr(args, k, None) for k in known}
    flag_strings = dict(getattr(args, SOURCES_ATTR, None) or {})
    resolved = from_sources(
        cls, values, file_values=file_values, file_path=path, flags=flags, flag_strings=flag_strings,
        extra_keys=known - set(option_specs(cls)),
    )  # fmt: skip
    config = resolved.values
    _apply_threads(config, resolved.sources.get("threads"))
    if "memory_limit_gb" not in option_specs(cls) and "memory_limit_gb" in config:
        from ..options import check_value
        from ..workflows.resources import memory_limit

        spec = memory_limit().metadata["attnpotts.option"]
        memory = config.pop("memory_limit_gb")
        check_value("memory_limit_gb", spec, memory, resolved.sources.get("memory_limit_gb"))
        args.memory_limit_gb = float(memory)
    if config.get("seed") is None:
        config["seed"] = 0
    if "memory_limit_gb" in config:
        args.memory_limit_gb = float(config["memory_limit_gb"])
    elif getattr(args, "memory_limit_gb", None) is None:
        args.memory_limit_gb = DEFAULT_MEMORY_LIMIT_GB
    args.deprecated_options = resolved.deprecated
    if config.get("device") is not None:
        check_device(str(config["device"]))
    if config.get("resume"):
        args.resolved_resume = config["resume"]  # for the clean-up after a successful resume
    command = getattr(args, "command", None)
    if command in ("sample", "theory", "evaluate", "train"):
        from ..workflows.resources import check_command_resources

        check_command_resources(command, config, args.memory_limit_gb)
    return config


def _threads_key(args: argparse.Namespace) -> set[str]:
    """``{"threads"}`` for a command that has ``--threads`` (a TOML key then too), else none."""
    return {"threads"} if hasattr(args, "threads") else set()


def _apply_threads(config: dict[str, Any], source: str | None = None) -> None:
    """Take ``threads`` out of a command's resolved ``config``, check it and apply it
    (:func:`attnpotts.threads.set_threads`); none or absent leaves the libraries' defaults.

    Raises:
        ValidationError: not an integer in [1, 4096], naming the flag or TOML key it came from.
    """
    if "threads" not in config:
        return
    value = config.pop("threads")
    if value is None:
        return
    from ..options import check_value, thread_count
    from ..threads import set_threads

    check_value("threads", thread_count().metadata["attnpotts.option"], value, source)
    set_threads(int(value))


def resolve_options(
    args: argparse.Namespace, cls: Any, *, base: Mapping[str, Any] | None = None
) -> Any:
    """The options object of class ``cls`` of a command line (:func:`resolve_config`)."""
    return cls(**resolve_config(args, cls, base=base))


def print_warnings(command: str, warnings: list[str]) -> None:
    """Print data warnings on stderr, one line each."""
    for w in warnings:
        print(f"attnpotts {command}: warning: {w}", file=sys.stderr)


def memory_limit_bytes(args: argparse.Namespace | None) -> int:
    """The memory limit of a command in bytes (``--memory-limit-gb`` or the default)."""
    gb = getattr(args, "memory_limit_gb", None) if args is not None else None
    return int((DEFAULT_MEMORY_LIMIT_GB if gb is None else float(gb)) * 1024**3)


def check_device(name: str) -> None:
    """Refuse a torch device this machine cannot serve (e.g. ``cuda`` without CUDA), cleanly.

    Raises:
        ValidationError: unknown device string, CUDA/MPS not available, or an index past the
            number of devices.
    """
    text = name.strip().lower()
    if text == "cpu":
        return
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as exc:
        raise ValidationError(
            f"unknown --device {name!r} ({exc}); use cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValidationError(
                f"--device {name} asks for CUDA, but this machine has no usable CUDA device "
                "(or torch was built without CUDA); use --device cpu"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValidationError(
                f"--device {name}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})"
            )
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValidationError(f"--device {name}: MPS is not available here; use --device cpu")
    elif device.type != "cpu":
        raise ValidationError(f"--device {name}: unsupported device type; use cpu, cuda or mps")


def exit_code_for(exc: BaseException) -> tuple[int, str]:
    """The exit status and the one-line message (without the command prefix) of ``exc``."""
    from ..storage import OutputLockedError

    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_CODES["interrupted"], (
            "interrupted; nothing half-written was left (finished runs of a sweep are kept for "
            "resume)"
        )
    if isinstance(exc, OutputLockedError):
        return EXIT_CODES["locked"], text
    if isinstance(exc, DivergenceError):
        return EXIT_CODES["diverged"], f"training diverged: {text}"
    if _device_out_of_memory(exc):
        first = text.split(". ")[0]  # torch's first sentence: "CUDA out of memory"
        return EXIT_CODES["out_of_memory"], (
            f"the GPU ran out of memory ({first}); run on the CPU (--device cpu), use smaller "
            "sizes, or lower --memory-limit-gb so that the estimate refuses such runs up front"
        )
    if isinstance(exc, MemoryError) and not isinstance(exc, ResourceLimitError):
        return EXIT_CODES["out_of_memory"], (
            "ran out of memory; use smaller sizes, or lower --memory-limit-gb so that the "
            "estimate refuses such runs up front"
        )
    if isinstance(exc, AttnPottsError | FileExistsError | FileNotFoundError):
        return EXIT_CODES["bad_input"], text
    if isinstance(exc, OSError):
        name = errno.errorcode.get(exc.errno or 0, "")
        what = exc.strerror or text
        where = f" {exc.filename}" if exc.filename is not None else ""
        hint = {
            "ENOSPC": "free some disk space or choose another --out",
            "EDQUOT": "free some disk quota or choose another --out",
            "EROFS": "the file system is read-only; choose another --out",
            "EACCES": "check the permissions, or choose another path",
            "EPERM": "check the permissions, or choose another path",
            "ENOTDIR": "a path component is a file, not a folder",
            "EISDIR": "a folder was given where a file is expected",
        }.get(name, "check the path and the disk")
        return EXIT_CODES["io_error"], (
            f"I/O error{where}: {what}" + (f" ({name})" if name else "") + f"; {hint}"
        )
    return EXIT_CODES["bug"], (
        f"unexpected internal error {type(exc).__name__}: {text}. This is a bug in attnpotts; "
        f"please report it with the command line (set {DEBUG_ENV}=1 to print the traceback)"
    )


def _device_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is torch's out-of-memory error of a GPU (a ``RuntimeError``, not a
    ``MemoryError``); torch is not imported for this."""
    torch = sys.modules.get("torch")
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    return isinstance(oom, type) and isinstance(exc, oom)


def _preflight_out(args: argparse.Namespace) -> Path | None:
    """Check ``--out`` before any work; return the folder to lock (None: the command has none)."""
    from ..storage import check_output_dir

    out = getattr(args, "out", None)
    if out is None:
        return None
    if getattr(args, "command", None) == "reproduce":  # resumes into its folder; checks it itself
        path = Path(os.path.abspath(out))
        if path.exists() and not path.is_dir():
            from ..storage import OutputFolderError

            raise OutputFolderError(f"output path {path} is a file, not a folder; choose another --out")
        return path
    return check_output_dir(out, overwrite=bool(getattr(args, "overwrite", False)))


def _remove_resumed_temporary(args: argparse.Namespace, out: Path) -> None:
    """After a resumed run finished into ``out``, remove the killed run's temporary folder.

    Only a folder named like the temporary folder of ``out`` (``.<name>.tmp-*`` next to it) that
    held the ``--resume`` checkpoint is removed, and only once ``out`` is a finished result.
    """
    import shutil

    from ..storage import OUTPUT_MARKER

    resume = getattr(args, "resolved_resume", None)
    if not resume or not (out / OUTPUT_MARKER).is_file():
        return
    stale = Path(os.path.abspath(resume)).parent
    if stale.parent == out.parent and stale.name.startswith(f".{out.name}.tmp-") and stale.is_dir():
        shutil.rmtree(stale, ignore_errors=True)


def _missing_file_message(exc: BaseException, argv: list[str]) -> str | None:
    """The message of a missing or misplaced input file, naming the option it was given to.

    ``FILE: no such file (given to --option); check the path`` for a bare ``[Errno 2]``; our own
    messages ("an .npz file FILE does not exist") get ``(given to --option)`` appended.
    """
    text = " ".join(str(exc).split())
    name = getattr(exc, "filename", None)
    bare = isinstance(exc, OSError) and exc.strerror is not None and isinstance(name, str)
    words = {w.strip(":;,.'\"()") for w in text.split()}  # a path is a whole word of the message
    option = None
    for k, token in enumerate(argv):
        flag, eq, value = token.partition("=")
        if not eq and k > 0 and argv[k - 1].startswith("--"):
            flag, value = argv[k - 1], token
        if not flag.startswith("--") or not value:
            continue
        if (bare and value == name) or (not bare and value in words):
            option = flag
    where = f" (given to {option})" if option else ""
    if bare:
        return f"{name}: no such file{where}; check the path"
    return f"{text}{where}; check the path" if option else None


def _note_deprecated(args: argparse.Namespace) -> None:
    """After a run, one line per old option spelling it used (errors stay one line)."""
    for note in getattr(args, "deprecated_options", None) or []:
        print(f"attnpotts {getattr(args, 'command', '')}: note: {note}", file=sys.stderr)


def run_command(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """Run the parsed subcommand ``args.func(args)`` with ``--out`` checked and locked.

    Returns its exit status; every exception becomes one line ``attnpotts COMMAND: error: ...`` on
    stderr and the exit status of :func:`exit_code_for` (the traceback of a bug only with
    ``ATTNPOTTS_DEBUG=1``); ``argv`` lets a missing file name the option it was given to.
    """
    from ..storage import output_lock

    try:
        out = _preflight_out(args)
        if out is None:
            code = int(args.func(args) or 0)
            _note_deprecated(args)
            return code
        with output_lock(out):
            code = int(args.func(args) or 0)
            _remove_resumed_temporary(args, out)
        _note_deprecated(args)
        return code
    except BaseException as exc:
        if isinstance(exc, SystemExit | GeneratorExit):
            raise
        code, message = exit_code_for(exc)
        if isinstance(exc, FileNotFoundError | IsADirectoryError) and argv:
            message = _missing_file_message(exc, argv) or message
        if code == EXIT_CODES["bug"] and os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            traceback.print_exc()
        print(f"attnpotts {getattr(args, 'command', '')}: error: {message}", file=sys.stderr)
        return code
