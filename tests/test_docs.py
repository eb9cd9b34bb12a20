"""The DCA guide's examples run as written: its Python block, and its commands parse."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from attnpotts.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "dca.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE, re.S)


def test_the_guides_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (code,) = _blocks("python")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__guide__"}
    exec(compile(code, "docs/dca.md python block", "exec"), namespace)
    assert namespace["scores"].shape == (53, 53)  # type: ignore[attr-defined]


def test_the_guides_commands_parse() -> None:
    (block,) = _blocks("bash")
    commands = [shlex.split(c, comments=True) for c in block.replace("\\\n", " ").splitlines()]
    commands = [c for c in commands if c]
    assert len(commands) == 3
    for argv in commands:
        assert argv[:2] == ["attnpotts", "contacts"]
        args = build_parser("contacts").parse_args(argv[1:])  # every flag exists, values parse
        assert args.command == "contacts" and args.out
