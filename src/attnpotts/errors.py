"""Error hierarchy of attnpotts.

Every error says what was received, what was expected and how to fix it. All errors derive from
:class:`AttnPottsError`; the ones about bad values also derive from :class:`ValueError` so that
generic ``except ValueError`` code keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "AttnPottsError",
    "ConvergenceError",
    "DataFormatError",
    "DivergenceError",
    "EnumerationLimitError",
    "MissingDependencyError",
    "ResourceLimitError",
    "ShapeError",
    "UnreachableTargetError",
    "ValidationError",
    "reject_unknown_keys",
]


class AttnPottsError(Exception):
    """Base class of every error raised on purpose by attnpotts."""


class ValidationError(AttnPottsError, ValueError):
    """An argument has an impossible value (negative beta, NaN, asymmetric couplings, ...)."""


class ShapeError(ValidationError):
    """An array has the wrong number of dimensions or the wrong size along one of them."""


class EnumerationLimitError(ValidationError):
    """Exact enumeration was asked for a system with too many states."""


class UnreachableTargetError(ValidationError):
    """A calibration target (e.g. a mean Hamming distance) lies outside the reachable range."""


class DataFormatError(AttnPottsError, ValueError):
    """A file is malformed; the message names the file and, where known, the line."""

    def __init__(self, message: str, *, path: object = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line


class ResourceLimitError(AttnPottsError, MemoryError):
    """A computation would not fit in memory (or another resource); says which option fits."""


class MissingDependencyError(AttnPottsError, ImportError):
    """An optional feature needs a package that is not installed; says what to install."""


class ConvergenceError(AttnPottsError, RuntimeError):
    """An iterative solver did not converge; carries the report of what happened."""


class DivergenceError(AttnPottsError, FloatingPointError):
    """Training produced a non-finite loss or parameters; the last good state is kept."""


def reject_unknown_keys(given: Iterable[str], known: Iterable[str], what: str, *, where: str = "") -> None:
    """Raise :class:`ValidationError` naming the keys of ``given`` not in ``known`` (and the known ones).

    ``what`` names the kind of key in the message (e.g. ``"training option"``); ``where`` prefixes
    it (e.g. a file name).
    """
    known_set = set(known)
    unknown = sorted(set(given) - known_set)
    if unknown:
        raise ValidationError(
            f"{where}unknown {what}(s) {', '.join(unknown)}; known: {', '.join(sorted(known_set))}"
        )
