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

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

#: Subcommand modules under ``attnpotts.cli``, in the order ``--help`` lists them.
SUBCOMMANDS: tuple[str, ...] = ("sample", "train", "evaluate", "contacts", "theory", "reproduce")

_EPILOG = """examples:
  attnpotts reproduce                          # the paper's experiments -> runs/reproduce/report.html
  attnpotts sample --out runs/sample           # sample the default generalized Potts model (L = q = 20)
  attnpotts train --data runs/sample --out runs/factored    # train one factored-attention layer
  attnpotts evaluate --run runs/factored --out runs/eval    # test loss vs optimal loss, coupling recovery
  attnpotts theory --alpha 0.5:8:16 --lam 0.01 0.1 --out runs/theory   # replica learning curves
  attnpotts contacts family.a2m --structure 1abc.pdb --chain A --out runs/dca   # contacts by DCA
  attnpotts COMMAND --help                     # options of one command
"""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered (or just ``only``).

    Registering one subcommand imports only its module, so that e.g. ``attnpotts sample`` does
    not pay for importing torch.
    """
    parser = argparse.ArgumentParser(
        prog="attnpotts",
        description="Factored attention and generalized Potts models (Rende et al. 2024).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"attnpotts {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS if only is None else (only,):
        module = importlib.import_module(f"attnpotts.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``attnpotts`` with ``argv``; return the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    from .common import run_command

    return run_command(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
