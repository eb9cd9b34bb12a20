"""Command-line flags and TOML keys generated from option fields, and their merge.

The rule of every command: defaults < keys of a ``--config`` TOML file < flags typed on the
command line. Flags are generated with ``default=None`` so that a flag the user did not type leaves
the file's value; every value is checked (:func:`~attnpotts.options.check_value`) with the source
it came from before the options object is built.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from .spec import OptionSpec, check_value, option_specs, shown_name

__all__ = ["SOURCES_ATTR", "Resolved", "add_arguments", "alias_map", "flag_of", "from_sources"]

#: Namespace attribute where the generated flags record the option string the user typed.
SOURCES_ATTR = "_option_flags"


def flag_of(name: str, spec: OptionSpec) -> str:
    """The flag of option ``name`` (``--name-with-dashes`` unless ``spec.flag`` says otherwise)."""
    return spec.flag if spec.flag else "--" + name.replace("_", "-")


def _show(value: Any) -> str:
    if isinstance(value, tuple | list):
        return " ".join(_show(v) for v in value)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _help(spec: OptionSpec, default: Any) -> str:
    text = spec.help.replace("%", "%%")
    if "default" in text.lower() or (default is None and spec.kind != "bool"):
        return text
    return f"{text} (default {_show(default)})".strip()


def _parse(spec: OptionSpec, text: str) -> Any:
    """One flag value from its text (the range is checked later, with the same message as TOML)."""
    lowered = text.strip().lower()
    for word in spec.special:
        if lowered == word.lower():
            return word
    if spec.none and lowered == "none":
        return None
    if spec.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
    if spec.kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    if spec.kind == "list":
        assert spec.item is not None
        return _parse(spec.item, text)
    return text


class _Store(argparse.Action):
    """Store a flag's value parsed by its spec and record which option string set it."""

    def __init__(self, *args: Any, spec: OptionSpec, **kwargs: Any) -> None:
        self.spec = spec
        super().__init__(*args, **kwargs)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
        option_string: str | None = None,
    ) -> None:  # fmt: skip
        if self.spec.kind == "bool":
            value: Any = not (option_string or "").startswith("--no-")
        else:
            try:
                if isinstance(values, list):
                    value = [_parse(self.spec, v) for v in values]
                else:
                    value = _parse(self.spec, values)
            except ValueError as exc:
                raise argparse.ArgumentError(self, str(exc)) from None
        setattr(namespace, self.dest, value)
        flags = dict(getattr(namespace, SOURCES_ATTR, None) or {})
        flags[self.dest] = option_string or ""
        setattr(namespace, SOURCES_ATTR, flags)


def add_arguments(
    parser: argparse.ArgumentParser,
    cls: Any,
    *,
    exclude: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
    group_order: Iterable[str] = (),
) -> None:
    """Add one flag per option field of ``cls`` to ``parser``, in ``--help`` groups.

    Flags default to ``None`` (not typed). ``defaults`` overrides the defaults shown in the help
    (e.g. a preset's); options whose ``spec.flag`` is ``""`` get no flag; ``group_order`` lists
    ``--help`` groups to show first. A boolean option gets
    ``--name`` and ``--no-name``; a deprecated alias is a hidden flag of the same option.
    """
    from .spec import defaults as field_defaults

    shown = {**field_defaults(cls), **(defaults or {})}
    skip = set(exclude)
    groups: dict[str, Any] = {g: parser.add_argument_group(g) for g in group_order}
    for name, spec in option_specs(cls).items():
        if name in skip or spec.flag == "":
            continue
        group = groups.get(spec.group)
        if group is None:
            group = groups[spec.group] = parser.add_argument_group(spec.group)
        if spec.exclusive:
            key = f"{spec.group}/{spec.exclusive}"
            if key not in groups:
                groups[key] = group.add_mutually_exclusive_group()
            group = groups[key]
        flag = flag_of(name, spec)
        kwargs: dict[str, Any] = {"dest": name, "default": None, "action": _Store, "spec": spec}
        if spec.kind == "bool":
            negative = "--no-" + flag[2:]
            group.add_argument(flag, negative, nargs=0, help=_help(spec, shown.get(name)), **kwargs)
            continue
        if spec.required:
            kwargs["required"] = True
        if spec.kind == "list":
            kwargs["nargs"] = "+"
        if spec.kind == "choice":
            kwargs["choices"] = list(spec.choices)
        if spec.metavar:
            kwargs["metavar"] = spec.metavar
        elif spec.kind != "choice":
            item = spec.item.kind if spec.item is not None else spec.kind
            kwargs["metavar"] = {"int": "N", "float": "X", "path": "PATH"}.get(item, "TEXT")
        group.add_argument(flag, help=_help(spec, shown.get(name)), **kwargs)
        for alias in spec.aliases:
            group.add_argument("--" + alias.replace("_", "-"), help=argparse.SUPPRESS, **kwargs)


def alias_map(cls: Any) -> dict[str, str]:
    """Deprecated name -> option name, over the option fields of ``cls``."""
    return {a: name for name, spec in option_specs(cls).items() for a in spec.aliases}


@dataclass
class Resolved:
    """Merged option values with where each came from.

    Attributes:
        values: option name -> value (defaults, then the file, then flags).
        sources: option name -> ``"--flag"`` or ``"key in FILE"`` (absent: the default).
        deprecated: notes on old spellings used (print them once the run starts).
    """

    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    deprecated: list[str] = field(default_factory=list)


def from_sources(
    cls: Any,
    base: Mapping[str, Any],
    *,
    file_values: Mapping[str, Any] | None = None,
    file_path: str | Path | None = None,
    flags: Mapping[str, Any] | None = None,
    flag_strings: Mapping[str, str] | None = None,
    extra_keys: Iterable[str] = (),
) -> Resolved:
    """Merge ``base`` < ``file_values`` (a TOML file's table) < ``flags`` (typed flags, non-None).

    Keys of the file are the option names of ``cls`` (old names in ``aliases`` are accepted with
    a deprecation note); ``extra_keys`` are further keys the caller handles. Unknown keys, and an
    option given under two names, are errors naming the file. Every value is checked against its
    spec with its source (the file's own values too, even those a flag overrides).
    """
    specs = option_specs(cls)
    aliases = alias_map(cls)
    extra = set(extra_keys)
    out = Resolved(dict(base))
    if file_values:
        where = f" in {file_path}" if file_path is not None else " in the options file"
        unknown = sorted(k for k in file_values if k not in specs and k not in aliases and k not in extra)
        if unknown:
            known = sorted(set(base) | extra)
            raise ValidationError(
                f"{file_path}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        for key, value in file_values.items():
            name = aliases.get(key, key)
            if name != key:
                if name in file_values:
                    raise ValidationError(
                        f"{file_path}: {key} and {name} name the same option; keep {name} only"
                    )
                out.deprecated.append(f"{key}{where} is deprecated; write {name}")
            source = f"{key}{where}"
            if name in specs:
                check_value(key, specs[name], value, source)
            out.values[name] = value
            out.sources[name] = source
    for name, value in (flags or {}).items():
        if value is None:
            continue
        written = (flag_strings or {}).get(name) or (
            flag_of(name, specs[name]) if name in specs else "--" + name.replace("_", "-")
        )
        out.values[name] = value
        out.sources[name] = written
        if name in specs and written.lstrip("-").replace("-", "_") in specs[name].aliases:
            out.deprecated.append(f"{written} is deprecated; use {flag_of(name, specs[name])}")
    for name, spec in specs.items():
        if name in out.values:
            given = out.sources.get(name)
            check_value(shown_name(name, given, spec), spec, out.values[name], given)
    return out
