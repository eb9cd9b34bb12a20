"""Parser-level messages of ``attnpotts``: misspelled options and commands, a missing --config."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnpotts.cli.evaluate import _numbers
from attnpotts.cli.main import main


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_misspelled_option_names_the_subcommand_and_the_closest_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = _error(["train", "--data", "x", "--epohcs", "3", "--out", "o"], capsys)
    assert err.startswith("attnpotts train: error: unrecognized option --epohcs")
    assert "did you mean --epochs?" in err and "attnpotts train --help" in err
    # checked before missing required options, so the typo is what the user sees
    err = _error(["sample", "--n-stats", "4"], capsys)
    assert "attnpotts sample" in err and "did you mean --n-states?" in err
    # top-level options too, and an option nothing resembles gets no guess
    assert "did you mean --version?" in _error(["--versoin"], capsys)
    err = _error(["theory", "--zzzzzz"], capsys)
    assert "unrecognized option --zzzzzz" in err and "did you mean" not in err


def test_abbreviations_and_negative_numbers_still_parse(tmp_path: Path) -> None:
    from attnpotts.cli.main import _unknown_options

    options = ["--epochs", "--out", "--lr", "-h"]
    assert _unknown_options(["--epo", "3", "--lr", "-1e-2", "-h"], options) == []
    assert _unknown_options(["--e", "3"], [*options, "--eps"]) == ["--e"]  # ambiguous prefix
    assert _unknown_options(["-vv", "-hv"], [*options, "-v"]) == []  # short flags run together
    assert _unknown_options(["-xv"], [*options, "-v"]) == ["-xv"]


def test_repeated_verbose_flags_run_together(tmp_path: Path) -> None:
    """``attnpotts -vv COMMAND`` means ``-v -v``, as argparse has it."""
    from attnpotts.cli.main import _parse, build_parser

    argv = ["-vv", "theory", "--out", str(tmp_path / "o")]
    assert _parse(build_parser("theory"), argv, "theory").verbose == 2


def test_misspelled_command_is_suggested(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(["trian", "--out", "x"], capsys)
    assert "unknown command 'trian'; did you mean 'train'?" in err


def test_extra_positional_names_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(["contacts", "a.fasta", "b.fasta", "--out", "o"], capsys)
    assert err.startswith("attnpotts contacts: error: unexpected argument(s) b.fasta")


def test_missing_config_file_names_the_file_and_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.toml"
    assert main(["sample", "--config", str(missing), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("attnpotts sample: error: ")
    assert str(missing) in err and "does not exist" in err and "(given to --config)" in err
    assert main(["sample", "--config", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(tmp_path) in err and "is a folder" in err
    assert not (tmp_path / "o").exists()


def test_evaluate_prints_numbers_not_lists() -> None:
    assert _numbers([0.99481234]) == "0.995"
    assert _numbers([0.9, 0.12]) == "0.900, 0.120 (per head)"
    assert _numbers(0.5) == "0.500"


def test_missing_input_file_names_the_file_and_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "model.npz"
    rc = main(["sample", "--model-file", str(missing), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2
    assert err.startswith("attnpotts sample: error: ") and str(missing) in err
    assert err.endswith("does not exist (given to --model-file); check the path")
    assert not (tmp_path / "o").exists()


def test_a_missing_file_is_tied_to_its_own_option_not_to_one_whose_value_it_contains() -> None:
    from attnpotts.cli.common import _missing_file_message

    exc = FileNotFoundError("a TOML options file /tmp/x1.toml does not exist")
    argv = ["sample", "--config", "/tmp/x1.toml", "--seed", "1"]
    assert _missing_file_message(exc, argv) == (
        "a TOML options file /tmp/x1.toml does not exist (given to --config); check the path"
    )


def test_python_dash_m_attnpotts_runs_the_command_without_warnings() -> None:
    import subprocess
    import sys

    from attnpotts import __version__

    proc = subprocess.run([sys.executable, "-W", "error", "-m", "attnpotts", "--version"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert __version__ in proc.stdout and proc.stderr == ""


def test_log_records_print_in_the_commands_form_with_one_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Library warnings read like the commands' own (``attnpotts CMD: warning: ...``); ``-v``
    adds the time and the logger; a second ``main`` replaces the handler instead of adding one."""
    import logging

    from attnpotts.cli.main import _CommandLogHandler, _log_to_stderr

    logger = logging.getLogger("attnpotts")
    level = logger.level
    try:
        _log_to_stderr("contacts", 0)
        logging.getLogger("attnpotts.dca.fit").warning("stopped early")
        logging.getLogger("attnpotts.dca.fit").info("hidden")
        assert capsys.readouterr().err == "attnpotts contacts: warning: stopped early\n"
        assert logger.level == level  # by default the logger's level is left to whoever set it
        _log_to_stderr("train", 1)
        logging.getLogger("attnpotts.training").info("epoch 1")
        line = capsys.readouterr().err
        assert line.startswith("attnpotts train: ") and line.endswith(" attnpotts.training info: epoch 1\n")
        assert sum(isinstance(h, _CommandLogHandler) for h in logger.handlers) == 1
    finally:
        for h in [h for h in logger.handlers if isinstance(h, _CommandLogHandler)]:
            logger.removeHandler(h)
        logger.setLevel(level)
