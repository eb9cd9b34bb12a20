"""Entry point of ``attnpotts``: dispatches to one module per subcommand.

Each module in :data:`SUBCOMMANDS` defines ``register(subparsers) -> argparse.ArgumentParser``
(adding its parser, with ``set_defaults(func=run)``) and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from .. import __version__

__all__ = ["SUBCOMMANDS", "build_parser", "entry_point", "main"]

#: Subcommand modules under ``attnpotts.cli``, in the order ``--help`` lists them.
SUBCOMMANDS: tuple[str, ...] = ("sample", "train", "evaluate", "contacts", "theory", "reproduce")

_EPILOG = """examples:
  attnpotts reproduce                          # the paper's experiments -> runs/reproduce/
  attnpotts sample --out runs/sample           # sample the default generalized Potts model
  attnpotts train --data runs/sample --out runs/factored    # train one factored-attention layer
  attnpotts evaluate --run runs/factored --out runs/eval    # test loss, coupling recovery
  attnpotts theory --alpha 0.5:8:16 --lam 0.01 0.1 --out runs/theory   # replica learning curves
  attnpotts contacts family.a2m --structure 1abc.pdb --chain A --out runs/dca   # contacts by DCA
  attnpotts COMMAND --help                     # options of one command
"""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered (or just ``only``).

    Registering one subcommand imports only its module, so that e.g. ``attnpotts sample`` does
    not pay for importing torch.
    """
    from .common import HelpFormatter

    parser = argparse.ArgumentParser(
        prog="attnpotts",
        description="Factored attention and generalized Potts models (Rende et al. 2024).",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"attnpotts {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS if only is None else (only,):
        module = importlib.import_module(f"attnpotts.cli.{name}")
        module.register(sub)
    return parser


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser | None:
    """The registered parser of subcommand ``name`` (None if it is not registered)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(name)
    return None


def _option_strings(*parsers: argparse.ArgumentParser) -> list[str]:
    return [o for p in parsers for a in p._actions for o in a.option_strings]


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _unknown_options(argv: list[str], options: list[str]) -> list[str]:
    """Options in ``argv`` that are neither known nor an unambiguous prefix of a known one."""
    unknown = []
    for token in argv:
        if token == "--":
            break
        if not token.startswith("-") or token == "-" or _is_number(token):
            continue
        flag = token.split("=", 1)[0]
        if flag in options:
            continue
        if flag.startswith("--") and len([o for o in options if o.startswith(flag)]) == 1:
            continue  # argparse accepts unambiguous abbreviations
        if not flag.startswith("--") and flag[:2] in options:
            continue  # short options run together (-vv) or with a value attached: argparse checks them
        unknown.append(flag)
    return unknown


def _parse(
    parser: argparse.ArgumentParser, argv: list[str], command: str | None
) -> argparse.Namespace:
    """Parse ``argv``. Errors name the subcommand, suggest the closest option or command
    (difflib), and name a missing ``--config`` file and the option."""
    if command is not None and command not in SUBCOMMANDS:
        close = difflib.get_close_matches(command, SUBCOMMANDS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        parser.error(f"unknown command {command!r}{hint} (choose from {', '.join(SUBCOMMANDS)})")
    sub = _subparser(parser, command) if command is not None else None
    target = sub if sub is not None else parser
    options = _option_strings(parser, target)
    unknown = _unknown_options(argv, options)
    if unknown:
        long_options = [o for o in options if o.startswith("--")]
        parts = []
        for flag in unknown:
            close = difflib.get_close_matches(flag, long_options, n=1, cutoff=0.6)
            parts.append(f"unrecognized option {flag}" + (f"; did you mean {close[0]}?" if close else ""))
        where = f"attnpotts {command} --help" if sub is not None else "attnpotts --help"
        target.error("; ".join(parts) + f" ({where} lists the options)")
    args, extra = parser.parse_known_args(argv)
    if extra:
        where = f"attnpotts {command} --help" if sub is not None else "attnpotts --help"
        target.error(f"unexpected argument(s) {' '.join(extra)} ({where} shows the usage)")
    return args


class _CommandLogFormat(logging.Formatter):
    """``attnpotts COMMAND: warning: message``, the form of the commands' own warnings and errors;
    with ``-v``, the time and the logger's name as well."""

    def __init__(self, command: str | None, verbose: int) -> None:
        prefix = "attnpotts" + (f" {command}" if command else "")
        detail = "%(asctime)s %(name)s " if verbose else ""
        super().__init__(f"{prefix}: {detail}%(level)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.level = record.levelname.lower()
        return super().format(record)


class _CommandLogHandler(logging.StreamHandler):
    """The stderr handler :func:`main` puts on the ``attnpotts`` logger (one at a time)."""


def _log_to_stderr(command: str | None, verbose: int) -> None:
    """Show attnpotts' log records on stderr: warnings, with ``-v`` info, ``-vv`` debug.

    The handler sits on the ``attnpotts`` logger, not the root, so that an application or a test
    harness that configured logging keeps its own handlers; a second :func:`main` in the same
    process replaces the first one's handler (and its stream) instead of adding another. The
    handler filters by level; the logger's own level is lowered only for ``-v``, so that by
    default whoever configured logging keeps deciding what reaches their handlers.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logger = logging.getLogger("attnpotts")
    for old in [h for h in logger.handlers if isinstance(h, _CommandLogHandler)]:
        logger.removeHandler(old)
    handler = _CommandLogHandler(sys.stderr)
    handler.setFormatter(_CommandLogFormat(command, verbose))
    handler.setLevel(level)
    logger.addHandler(handler)
    if verbose:
        logger.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``attnpotts`` with ``argv``; return the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in SUBCOMMANDS else None)
    args = _parse(parser, argv, command)
    _log_to_stderr(getattr(args, "command", None), int(args.verbose))
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    from .common import run_command

    return run_command(args, argv=argv)


def entry_point() -> NoReturn:
    """The ``attnpotts`` console script and ``python -m attnpotts``: :func:`main`, then a quick
    exit (:func:`attnpotts.processes.exit_now`: no interpreter teardown, 0.3-0.7 s after torch)."""
    from ..processes import exit_now

    exit_now(main())


if __name__ == "__main__":  # pragma: no cover
    entry_point()
