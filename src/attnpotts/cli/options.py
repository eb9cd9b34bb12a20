"""Typed option tables of the subcommands: (name, type, range or choices) per command.

:func:`check_options` validates resolved option values (from a TOML ``--config`` file or flags)
before any work, with the same message for either source and no silent coercion: ``"false"`` is
not a boolean, ``1.5`` is not an epoch count, ``"Protein"`` is not ``"protein"``, ``"0.01"`` is not
a number. The tables are plain data so that a later single definition of each command's options
(typed dataclasses generating the flags) can take them over unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ValidationError

__all__ = ["OPTION_TABLES", "OptionSpec", "check_option", "check_options"]

Kind = Literal["int", "float", "bool", "str", "path", "choice", "list"]


@dataclass(frozen=True)
class OptionSpec:
    """Type and allowed values of one option.

    Attributes:
        kind: ``int`` (a true integer), ``float`` (any finite number), ``bool`` (true/false only),
            ``str``/``path`` (text), ``choice`` (one of ``choices``, exact spelling), ``list``
            (a list, or one value, whose items have ``item`` kind).
        low, high: inclusive bounds of numbers (``low_open``/``high_open`` make them exclusive).
        choices: allowed values of a ``choice``.
        none: ``None`` allowed (the option's automatic default).
        special: extra literal values also allowed (e.g. ``"full"`` for a batch size).
        item: the spec of the items of a ``list``.
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

    def describe(self) -> str:
        """What the option accepts, in words."""
        if self.kind == "choice":
            want = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "list":
            assert self.item is not None
            want = f"a list of ({self.item.describe()})"
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


def _i(low: float | None = None, high: float | None = None, **kw: Any) -> OptionSpec:
    return OptionSpec("int", low, high, **kw)


def _f(low: float | None = None, high: float | None = None, **kw: Any) -> OptionSpec:
    return OptionSpec("float", low, high, **kw)


def _c(*choices: str, **kw: Any) -> OptionSpec:
    return OptionSpec("choice", choices=choices, **kw)


_BOOL = OptionSpec("bool")
_SEED = _i(0, 2**63 - 1)
_DEVICE = OptionSpec("str", none=True)
_POS = {"low": 0.0, "low_open": True}

#: Option tables by command (``"*"``: options every command shares).
OPTION_TABLES: dict[str, dict[str, OptionSpec]] = {
    "*": {"seed": _SEED, "memory_limit_gb": _f(0, 1e6, low_open=True)},
    "sample": {
        "n_sites": _i(2), "n_states": _i(2), "site": _c("sparse", "dense"),
        "mean_degree": _f(0), "site_scale": _f(0), "colour": _c("gaussian", "identity", "ferromagnetic"),
        "colour_scale": _f(0), "colour_diagonal": _f(), "model_file": OptionSpec("path", none=True),
        "beta": _f(0, none=True), "target_distance": _f(0, 1, low_open=True, high_open=True, none=True, special=("none",)),
        "beta_max": _f(**_POS), "n_train": _i(1), "n_test": _i(0),
        "method": _c("gibbs", "parallel_tempering"), "rule": _c("gibbs", "metropolis"),
        "sweep": _c("sequential", "random"), "n_chains": _i(1), "n_temperatures": _i(2),
        "pilot_sweeps": _i(8), "burn_in": _i(0, none=True), "thin": _i(1, none=True),
        "dtype": _c("float64", "float32"),
    },
    "train": {
        "model": _c("factored", "potts", "transformer"), "variant": _c("free", "softmax"),
        "heads": _i(1, none=True), "key_dim": _i(1), "value_rank": _i(1, none=True), "fields": _BOOL,
        "symmetric": _BOOL, "init_std": _f(0, none=True), "layers": _i(1), "width": _i(1),
        "dropout": _f(0, 1, high_open=True), "dtype": _c("float32", "float64"), "device": _DEVICE,
        "data": OptionSpec("path", none=True), "validation_fraction": _f(0, 1, high_open=True),
        "test_fraction": _f(0, 1, high_open=True), "weighting": _c("auto", "none", "identity"),
        "identity_threshold": _f(0, 1, low_open=True), "alphabet": _c("protein", "rna"),
        "optimizer": _c("adam", "adamw", "lbfgs"), "lr": _f(none=True), "epochs": _i(0),
        "batch_size": _i(1, none=True, special=("full",)), "masking": _c("all", "one", "copies", "bert"),
        "mask_copies": _i(1, none=True), "lr_schedule": _c("constant", "cosine"),
        "warmup_epochs": _f(0), "min_lr_ratio": _f(0, 1), "validation_positions": _i(1, none=True),
        "mask_rate": _f(0, 1, low_open=True), "weight_decay": _f(0), "coupling_l2": _f(0),
        "field_l2": _f(0), "patience": _i(1, none=True), "min_delta": _f(0), "tolerance": _f(0),
        "max_grad_norm": _f(**_POS, none=True), "lbfgs_max_iter": _i(1), "checkpoint_every": _i(1),
        "resume": OptionSpec("path", none=True),
    },
    "evaluate": {"device": _DEVICE},
    "theory": {
        "states": _i(2), "beta": _f(0), "lam": OptionSpec("list", item=_f(0)),
        "alpha": OptionSpec("list", item=OptionSpec("str")), "rho": _f(**_POS),
        "ucol": OptionSpec("str"), "ucol_seed": _SEED, "student": _c("factored", "full", "ising"),
        "optimal_lambda": _BOOL, "simulate": _i(0), "seeds": _i(1),
        "sim_student": _c("convex", "full", "attention", none=True), "n_test": _i(1),
        "tol": _f(**_POS), "integration": _c("auto", "gauss-hermite", "qmc"), "device": _DEVICE,
    },
    "contacts": {
        "model": _c("plm", "factored"), "identity_threshold": _f(0, 1, low_open=True),
        "regularization": OptionSpec("str"), "lambda_j": _f(0, none=True), "lambda_h": _f(0),
        "max_iter": _i(1, none=True), "lbfgs_history": _i(1, none=True), "n_heads": _i(1),
        "key_dim": _i(1), "kernel": OptionSpec("str"), "dtype": _c("float32", "float64"),
        "memory_limit_gb": _f(0, 1e6, low_open=True), "score_gap": _c("exclude", "include", none=True),
        "focus": _BOOL, "reference": OptionSpec("str", none=True),
        "max_column_gap": _f(0, 1, none=True), "device": _DEVICE,
    },
}  # fmt: skip


def _number_ok(spec: OptionSpec, v: float) -> bool:
    if not math.isfinite(v):
        return False
    if spec.low is not None and (v < spec.low or (spec.low_open and v == spec.low)):
        return False
    return not (spec.high is not None and (v > spec.high or (spec.high_open and v == spec.high)))


def _valid(spec: OptionSpec, value: Any) -> bool:
    if value is None:
        return spec.none
    if isinstance(value, str) and value in spec.special:
        return True
    if spec.kind == "bool":
        return isinstance(value, bool)
    if spec.kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) and _number_ok(spec, value)
    if spec.kind == "float":
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and _number_ok(spec, float(value))
        )
    if spec.kind in ("str", "path"):
        return isinstance(value, str) and value != "" and "\x00" not in value
    if spec.kind == "choice":
        return isinstance(value, str) and value in spec.choices
    if spec.kind == "list":
        assert spec.item is not None
        items = value if isinstance(value, list | tuple) else [value]
        item = spec.item
        if item.kind == "str":  # e.g. alphas: numbers or range strings
            return len(items) > 0 and all(
                (isinstance(x, int | float) and not isinstance(x, bool)) or _valid(item, x) for x in items
            )
        return len(items) > 0 and all(_valid(item, x) for x in items)
    return False  # pragma: no cover - every kind is handled above


def check_option(name: str, spec: OptionSpec, value: Any, source: str | None = None) -> None:
    """Raise :class:`ValidationError` unless ``value`` fits ``spec`` (no coercion).

    ``source`` names where the value came from (``--epochs`` or ``epochs in run.toml``).
    """
    if _valid(spec, value):
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


def check_options(
    command: str, values: Mapping[str, Any], sources: Mapping[str, str] | None = None
) -> None:
    """Check every value of ``values`` that the option table of ``command`` (or ``"*"``) knows."""
    table = {**OPTION_TABLES["*"], **OPTION_TABLES.get(command, {})}
    sources = sources or {}
    for name, value in values.items():
        spec = table.get(name)
        if spec is not None:
            check_option(name, spec, value, sources.get(name))
