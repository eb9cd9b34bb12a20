"""Entry point of ``attnpotts``: dispatches to one module per subcommand.

Each module in :data:`SUBCOMMANDS` defines ``register(subparsers) -> argparse.ArgumentParser``
(adding its parser, with ``set_defaults(func=run)``) and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import AttnPottsError

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

#: Subcommand modules under ``attnpotts.cli``, in the order ``--help`` lists them.
SUBCOMMANDS: tuple[str, ...] = ("sample", "train", "evaluate", "contacts", "theory", "reproduce")

_EPILOG = """examples:
  attnpotts sample --out runs/sample          # sample the default generalized Potts model
  attnpotts sample --help                     # options of one subcommand
"""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="attnpotts",
        description="Factored attention and generalized Potts models (Rende et al. 2024).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"attnpotts {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"attnpotts.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``attnpotts`` with ``argv``; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (AttnPottsError, FileExistsError, FileNotFoundError) as exc:
        print(f"attnpotts {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"attnpotts {args.command}: interrupted; nothing half-written was left (finished runs of a sweep are kept for resume)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
