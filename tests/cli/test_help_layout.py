"""Every ``--help`` fits a 100-column terminal, and its examples are commands the parser accepts."""

from __future__ import annotations

import shlex

import pytest

from attnpotts.cli.main import SUBCOMMANDS, build_parser, main

WIDTH = 100


def _help(command: str | None, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"] if command else ["--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def _examples(text: str, command: str) -> list[list[str]]:
    """The example command lines of ``attnpotts COMMAND`` in a help text, each joined with the
    lines it continues onto (a trailing backslash), the comment after ``#`` dropped."""
    lines = text.split("\n")
    found: list[list[str]] = []
    for k, line in enumerate(lines):
        if not line.startswith(f"  attnpotts {command} "):
            continue
        joined = line
        while joined.rstrip().endswith("\\"):
            k += 1
            joined = joined.rstrip()[:-1] + " " + lines[k].strip()
        found.append(shlex.split(joined, comments=True)[1:])
    return found


@pytest.mark.parametrize("command", [None, *SUBCOMMANDS])
def test_help_fits_the_terminal_width(
    command: str | None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """argparse wraps the options to ``COLUMNS``; the descriptions are wrapped by the project's
    formatter and the examples are written to fit."""
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    text = _help(command, capsys)
    long = [line for line in text.split("\n") if len(line) > WIDTH]
    assert not long, f"lines wider than {WIDTH} columns in `attnpotts {command or ''} --help`: {long}"


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_examples_parse(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Each example of a command's ``--help`` is accepted by its parser as printed (a line that
    continues onto the next one shows its backslash; nothing is run)."""
    text = _help(command, capsys)
    examples = _examples(text, command)
    assert examples, f"`attnpotts {command} --help` shows no example"
    parser = build_parser(only=command)
    for argv in examples:
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"the example `attnpotts {shlex.join(argv)}` does not parse: "
                        f"{capsys.readouterr().err.strip()}")
        assert args.command == command


def test_a_continued_example_keeps_its_line_break(capsys: pytest.CaptureFixture[str]) -> None:
    """The contacts example that spans two lines prints its backslash and the next line apart
    (an unescaped backslash in the source joined them into one line)."""
    text = _help("contacts", capsys)
    line = next(x for x in text.split("\n") if "--structure 2X1B_A.pdb" in x)
    assert line.rstrip().endswith("\\")
    assert "--structure-sequence" not in line
