"""The options unit: one field per option gives the flag, the TOML key, the check and the help."""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from attnpotts.cli.common import add_common_arguments, resolve_options
from attnpotts.cli.main import main
from attnpotts.errors import DataFormatError, ValidationError
from attnpotts.options import (
    OptionSpec,
    add_arguments,
    boolean,
    choice,
    integer,
    number,
    number_list,
    option_specs,
    validate,
)


@dataclass(frozen=True)
class Toy:
    """A command's options, declared once."""

    count: int = integer(3, 1, group="main", aliases=("n",), help="how many")
    rate: float = number(0.5, 0, 1, low_open=True, group="main", help="a rate")
    kind: str = choice("a", ("a", "b"), group="main", help="which")
    flag: bool = boolean(True, group="main", help="switch")
    grid: tuple[float, ...] = number_list((0.1,), OptionSpec("float", low=0), help="values")
    seed: int = integer(0, 0, flag="", help="seed")

    def __post_init__(self) -> None:
        validate(self)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_common_arguments(parser, default_out="o")
    add_arguments(parser, Toy)
    return parser


def _resolve(argv: list[str]) -> tuple[Toy, argparse.Namespace]:
    args = _parser().parse_args(argv)
    return resolve_options(args, Toy), args


def test_flags_and_help_come_from_the_fields() -> None:
    text = _parser().format_help()
    for line in ("--count N", "how many (default 3)", "--rate X", "--kind {a,b}", "--flag, --no-flag",
                 "--grid X [X ...]", "main:"):  # fmt: skip
        assert line in text, line
    assert "--n " not in text  # an old spelling is read but not advertised
    assert set(option_specs(Toy)) == {"count", "rate", "kind", "flag", "grid", "seed"}


def test_defaults_file_and_flags_merge_in_that_order(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("count = 7\nrate = 0.25\nflag = false\ngrid = [1.0, 2.0]\n")
    toy, _ = _resolve(["--config", str(cfg), "--rate", "0.75"])
    assert toy == Toy(count=7, rate=0.75, kind="a", flag=False, grid=(1.0, 2.0))
    toy, _ = _resolve(["--no-flag", "--grid", "3", "4"])
    assert toy.flag is False and toy.grid == (3.0, 4.0)


@pytest.mark.parametrize(
    ("toml", "argv", "message"),
    [
        ("count = 1.5", ["--count", "0"], "count must be an integer >= 1"),
        ('rate = "0.5"', ["--rate", "2"], "rate must be a number in (0, 1]"),
        ('kind = "A"', ["--kind", "c"], "one of 'a', 'b'"),
        ('flag = "false"', None, "flag must be true or false"),
    ],
)
def test_same_check_from_a_flag_a_toml_key_and_python(
    tmp_path: Path, toml: str, argv: list[str] | None, message: str
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml + "\n")
    with pytest.raises(ValidationError, match=r"from \w+ in .*c\.toml") as err:
        _resolve(["--config", str(cfg)])
    assert message in str(err.value)
    if argv is not None and argv[0] != "--kind":  # argparse itself refuses a bad choice
        with pytest.raises(ValidationError, match=f"from {argv[0]}") as err:
            _resolve(argv)
        assert message in str(err.value)
    key = toml.partition(" = ")[0]
    with pytest.raises(ValidationError, match="from option"):
        Toy(**{key: tomllib.loads(toml)[key]})


def test_the_seed_and_a_broken_file(tmp_path: Path) -> None:
    """The seed follows the same order (default 0, file, flag); a file that is not TOML is an error."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("seed = 3\n")
    assert _resolve(["--config", str(cfg)])[0].seed == 3
    assert _resolve(["--config", str(cfg), "--seed", "9"])[0].seed == 9
    assert _resolve([])[0].seed == 0
    cfg.write_text("count = \n")
    with pytest.raises(DataFormatError, match="invalid TOML"):
        _resolve(["--config", str(cfg)])


def test_unknown_keys_and_old_spellings(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("cuont = 2\n")
    with pytest.raises(ValidationError, match="unknown option"):
        _resolve(["--config", str(cfg)])
    cfg.write_text("n = 2\n")
    toy, args = _resolve(["--config", str(cfg)])
    assert toy.count == 2 and "n in" in args.deprecated_options[0]
    toy, args = _resolve(["--n", "5"])
    assert toy.count == 5 and args.deprecated_options == ["--n is deprecated; use --count"]
    cfg.write_text("n = 2\ncount = 3\n")
    with pytest.raises(ValidationError, match="name the same option"):
        _resolve(["--config", str(cfg)])


def test_old_train_spellings_still_work_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--epochs`, `--lr`, `--heads` are read as max_epochs, learning_rate, n_heads."""
    from attnpotts.alignment.examples import example_files
    from attnpotts.workflows import TrainOptions

    aln = str(example_files("PF00014").alignment)
    cfg = tmp_path / "t.toml"
    cfg.write_text("epochs = 1\nlr = 0.02\n")
    from attnpotts.cli.main import build_parser

    args: Any = build_parser("train").parse_args(
        ["train", "--data", aln, "--config", str(cfg), "--heads", "2", "--out", str(tmp_path / "o")]
    )
    options = resolve_options(args, TrainOptions)
    assert (options.max_epochs, options.learning_rate, options.n_heads) == (1, 0.02, 2)
    assert len(args.deprecated_options) == 3
    assert main(["train", "--data", "nowhere", "--lr", "-1", "--out", str(tmp_path / "p")]) == 2
    assert "learning_rate must be a number > 0" in capsys.readouterr().err


def test_evaluate_reads_the_config_of_runs_written_with_the_old_option_names(tmp_path: Path) -> None:
    """A run folder whose config.json has `lr`, `epochs`, `heads` (earlier versions) evaluates."""
    import json

    from attnpotts.workflows import (
        EvaluateOptions,
        SampleOptions,
        TrainOptions,
        evaluate,
        sample,
        train,
    )

    sample(SampleOptions(n_sites=5, n_states=3, target_distance=None, beta=1.0, n_train=200,
                         n_test=50, n_chains=10, pilot_sweeps=20, seed=0), tmp_path / "s")  # fmt: skip
    train(TrainOptions(data=str(tmp_path / "s"), optimizer="lbfgs", max_epochs=2), tmp_path / "r")
    new = evaluate(EvaluateOptions(run=str(tmp_path / "r")), tmp_path / "e1")
    cfg_path = tmp_path / "r" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    renamed = {"learning_rate": "lr", "max_epochs": "epochs", "n_heads": "heads",
               "n_layers": "layers", "n_mask_copies": "mask_copies"}  # fmt: skip
    cfg["options"] = {renamed.get(k, k): v for k, v in cfg["options"].items()}
    cfg_path.write_text(json.dumps(cfg))
    old = evaluate(EvaluateOptions(run=str(tmp_path / "r")), tmp_path / "e2")
    assert old["test_loss"] == new["test_loss"] and old["data"] == new["data"]


@pytest.mark.parametrize("command", ["reproduce", "sample", "contacts"])
@pytest.mark.parametrize("value", ['""', "-1.0", '"8"'])
def test_every_command_checks_the_memory_limit_key_with_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, value: str
) -> None:
    """A bad ``memory_limit_gb`` in a TOML file is refused by the option's one check (exit 2, the
    file named, nothing written), in reproduce's preset-based options as in the others."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"memory_limit_gb = {value}\n")
    argv = {"reproduce": ["reproduce", "--quick"], "sample": ["sample"],
            "contacts": ["contacts", str(tmp_path / "none.fasta")]}[command]
    assert main([*argv, "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "memory_limit_gb must be a number in (0, 1e+06]" in err and "c.toml" in err, err
    assert not (tmp_path / "o").exists()
