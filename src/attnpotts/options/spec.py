"""Option metadata on dataclass fields, and the checks it defines (no coercion)."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ValidationError

__all__ = [
    "Kind",
    "OptionSpec",
    "boolean",
    "check_value",
    "choice",
    "defaults",
    "frozen_tuples",
    "integer",
    "number",
    "number_list",
    "option",
    "option_specs",
    "text",
    "validate",
]

Kind = Literal["int", "float", "bool", "str", "path", "choice", "list"]

#: Key of a field's metadata that holds its :class:`OptionSpec`.
METADATA_KEY = "attnpotts.option"


@dataclass(frozen=True)
class OptionSpec:
    """Everything known about one option besides its name and default.

    Attributes:
        kind: ``int`` (a true integer), ``float`` (any finite number), ``bool`` (true/false only),
            ``str``/``path`` (non-empty text), ``choice`` (one of ``choices``, exact spelling),
            ``list`` (a list, or one value, whose items have the ``item`` kind).
        low, high: inclusive bounds of numbers (``low_open``/``high_open`` make them exclusive).
        choices: allowed values of a ``choice``.
        none: ``None`` allowed (the option's automatic default).
        special: extra literal values also allowed (e.g. ``"full"`` for a batch size).
        item: the spec of the items of a ``list``.
        help: the ``--help`` text (the default is appended unless the text states it).
        flag: the command-line flag (default ``--`` + the name with dashes); ``""``: no flag,
            the option is set in TOML or Python only.
        group: the ``--help`` section.
        aliases: old names still accepted as TOML keys and flags, with a deprecation note.
        metavar: the value's name in ``--help``.
        required: the flag must be given on the command line.
        empty: a ``list`` may be empty.
        exclusive: options with the same non-empty name here exclude each other on the command
            line (the options class checks it for TOML and Python too).
    """

    kind: Kind
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    none: bool = False
    special: tuple[str, ...] = ()
    item: OptionSpec | None = None
    help: str = ""
    flag: str | None = None
    group: str = "options"
    aliases: tuple[str, ...] = ()
    metavar: str | None = None
    required: bool = False
    exclusive: str = ""
    empty: bool = False

    def describe(self) -> str:
        """What the option accepts, in words."""
        if self.kind == "choice":
            want = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "list":
            assert self.item is not None
            want = f"a list of ({self.item.describe()})" + ("" if self.empty else ", not empty")
        else:
            want = {"int": "an integer", "float": "a number", "bool": "true or false",
                    "str": "a text string", "path": "a file path (text)"}[self.kind]  # fmt: skip
            lo, hi = self.low, self.high
            if lo is not None and hi is not None:
                want += f" in {'(' if self.low_open else '['}{lo:g}, {hi:g}{')' if self.high_open else ']'}"
            elif lo is not None:
                want += f" {'>' if self.low_open else '>='} {lo:g}"
            elif hi is not None:
                want += f" {'<' if self.high_open else '<='} {hi:g}"
        extras = [repr(s) for s in self.special] + (["none (automatic)"] if self.none else [])
        return want + (f", or {' or '.join(extras)}" if extras else "")


def option(default: Any = dataclasses.MISSING, kind: Kind = "str", **spec: Any) -> Any:
    """A dataclass field with option metadata (``spec``: the :class:`OptionSpec` attributes).

    A list or tuple default becomes a tuple (dataclass defaults must be immutable).
    """
    if isinstance(default, list):
        default = tuple(default)
    return dataclasses.field(default=default, metadata={METADATA_KEY: OptionSpec(kind, **spec)})


def integer(default: int | None, low: float | None = None, high: float | None = None, **spec: Any) -> Any:
    """An integer option (``low``/``high``: inclusive bounds)."""
    return option(default, "int", low=low, high=high, **spec)


def number(default: float | None, low: float | None = None, high: float | None = None, **spec: Any) -> Any:
    """A finite real-number option (``low``/``high``: bounds, ``*_open`` for strict ones)."""
    return option(default, "float", low=low, high=high, **spec)


def boolean(default: bool, **spec: Any) -> Any:
    """A true/false option (flags ``--name`` and ``--no-name``)."""
    return option(default, "bool", **spec)


def choice(default: str | None, choices: tuple[str, ...], **spec: Any) -> Any:
    """One of ``choices``, spelled exactly."""
    return option(default, "choice", choices=tuple(choices), **spec)


def text(default: str | None, kind: Literal["str", "path"] = "str", **spec: Any) -> Any:
    """A non-empty text (``kind="path"``: a file path, checked by its reader)."""
    return option(default, kind, **spec)


def number_list(default: tuple[Any, ...], item: OptionSpec, **spec: Any) -> Any:
    """A list of values of the ``item`` kind (one value is a list of one)."""
    return option(tuple(default), "list", item=item, **spec)


def option_specs(cls: Any) -> dict[str, OptionSpec]:
    """The :class:`OptionSpec` of every option field of dataclass ``cls`` (in field order)."""
    return {
        f.name: f.metadata[METADATA_KEY]
        for f in dataclasses.fields(cls)
        if METADATA_KEY in f.metadata
    }


def defaults(cls: Any) -> dict[str, Any]:
    """The defaults of the option fields of dataclass ``cls``."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if METADATA_KEY not in f.metadata:
            continue
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _number_ok(spec: OptionSpec, v: float) -> bool:
    if not math.isfinite(v):
        return False
    if spec.low is not None and (v < spec.low or (spec.low_open and v == spec.low)):
        return False
    return not (spec.high is not None and (v > spec.high or (spec.high_open and v == spec.high)))


def _is_int(value: Any) -> bool:
    # numpy integers are integers too; a bool is not (TOML and flags never give numpy types)
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def valid(spec: OptionSpec, value: Any) -> bool:
    """Whether ``value`` fits ``spec`` exactly (no coercion)."""
    if value is None:
        return spec.none
    if isinstance(value, str) and value in spec.special:
        return True
    if spec.kind == "bool":
        return isinstance(value, bool)
    if spec.kind == "int":
        return _is_int(value) and _number_ok(spec, float(value))
    if spec.kind == "float":
        return _is_real(value) and _number_ok(spec, float(value))
    if spec.kind in ("str", "path"):
        return isinstance(value, str) and value != "" and "\x00" not in value
    if spec.kind == "choice":
        return isinstance(value, str) and value in spec.choices
    if spec.kind == "list":
        assert spec.item is not None
        items = value if isinstance(value, list | tuple) else [value]
        item = spec.item
        if not items:
            return spec.empty
        if item.kind == "str":  # e.g. alphas: numbers or range strings
            return all(_is_real(x) or valid(item, x) for x in items)
        return all(valid(item, x) for x in items)
    return False  # pragma: no cover - every kind is handled above


def check_value(name: str, spec: OptionSpec, value: Any, source: str | None = None) -> None:
    """Raise :class:`ValidationError` unless ``value`` fits ``spec`` (no coercion).

    ``source`` names where the value came from (``--epochs`` or ``epochs in run.toml``).
    """
    if valid(spec, value):
        return
    where = source or f"option {name}"
    hint = ""
    if spec.kind == "choice" and isinstance(value, str):
        close = [c for c in spec.choices if c.lower() == value.strip().lower()]
        if close:
            hint = f" (spelling matters: did you mean {close[0]!r}?)"
    if isinstance(value, str) and spec.kind in ("int", "float", "bool"):
        hint = " (write it without quotes in TOML)"
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise ValidationError(
        f"{name} must be {spec.describe()}; got {shown} ({type(value).__name__}, from "
        f"{where}){hint}"
    )


def validate(instance: Any, sources: dict[str, str] | None = None) -> None:
    """Check every option field of the dataclass ``instance`` against its spec.

    ``sources`` maps a field to where its value came from (a flag, a TOML key); the message then
    names the option as the user wrote it. The value of a ``list`` option becomes a tuple
    (options objects are immutable); one value, ``x = 0`` in TOML, a tuple of one.
    """
    sources = sources or {}
    specs = option_specs(type(instance))
    for name, spec in specs.items():
        if spec.kind == "list" and isinstance(getattr(instance, name), list):
            object.__setattr__(instance, name, tuple(getattr(instance, name)))
    for name, spec in specs.items():
        source = sources.get(name)
        check_value(shown_name(name, source, spec), spec, getattr(instance, name), source)
    for name, spec in specs.items():  # checked as written, then one value becomes a list of one
        value = getattr(instance, name)
        if spec.kind == "list" and not isinstance(value, tuple | type(None)) and not (
            isinstance(value, str) and value in spec.special
        ):
            object.__setattr__(instance, name, (value,))


def shown_name(name: str, source: str | None, spec: OptionSpec) -> str:
    """The name to show in a message: a TOML key as written (``"lr in run.toml"`` names ``lr``,
    an old spelling), else ``name`` (a flag's message names the option and, as its source, the
    flag typed)."""
    if source is None or " in " not in source:
        return name
    written = source.split(" in ", 1)[0]
    return written if written in spec.aliases else name


def frozen_tuples(instance: Any) -> None:
    """Turn list values of a frozen dataclass into tuples (hashable, immutable)."""
    for f in dataclasses.fields(instance):
        v = getattr(instance, f.name)
        if isinstance(v, list):
            object.__setattr__(instance, f.name, tuple(v))
