"""Shared CLI plumbing: ``--config FILE.toml``, ``--seed``, ``--out``, ``--overwrite``, ``--device``.

The rule for every subcommand: defaults < values in ``--config`` < flags given on the command line.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from ..errors import DataFormatError, ValidationError

__all__ = ["add_common_arguments", "resolve_config"]


def add_common_arguments(
    parser: argparse.ArgumentParser, *, default_out: str | None = None, device: bool = False
) -> None:
    """Add ``--config``, ``--seed``, ``--out``, ``--overwrite`` (and ``--device``) to ``parser``."""
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
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    if device:
        parser.add_argument(
            "--device", default=None, help="torch device: cpu (default), cuda, cuda:1, ..."
        )


def resolve_config(args: argparse.Namespace, defaults: dict[str, Any]) -> dict[str, Any]:
    """Merge ``defaults``, the ``--config`` TOML file and explicitly given flags.

    ``defaults`` maps option names (``dest`` of the flags) to default values; only those keys are
    read from the file, unknown keys are an error naming the file and the key. Option flags must
    be declared with ``default=None`` so that a flag the user did not type leaves the file's value.
    """
    config = dict(defaults)
    if getattr(args, "config", None) is not None:
        path = Path(args.config)
        try:
            with path.open("rb") as fh:
                from_file = tomllib.load(fh)
        except FileNotFoundError:
            raise
        except tomllib.TOMLDecodeError as exc:
            raise DataFormatError(f"invalid TOML ({exc})", path=path) from exc
        unknown = sorted(set(from_file) - set(defaults) - {"seed"})
        if unknown:
            raise ValidationError(
                f"{path}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(defaults))}"
            )
        config.update(from_file)
    # Option flags have default None, so a non-None value was typed and overrides the file.
    for key in defaults:
        value = getattr(args, key, None)
        if value is not None:
            config[key] = value
    if getattr(args, "seed", None) is not None:
        config["seed"] = args.seed
    config.setdefault("seed", 0)
    if config["seed"] is None:
        config["seed"] = 0
    return config
