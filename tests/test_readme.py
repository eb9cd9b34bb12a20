"""Every example of the README runs: the Python blocks, and (slow) each shell command."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from attnpotts.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def test_readme_opens_with_the_two_commands() -> None:
    first = _blocks("bash")[0].strip().splitlines()
    assert len(first) == 2
    assert first[0].startswith("bash scripts/setup.sh && .venv/bin/attnpotts reproduce")
    assert first[1].startswith("bash scripts/test.sh")
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_example_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = _blocks("python")[index]
    exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": "__readme__"})


def _session_commands() -> list[str]:
    return [
        line.strip()
        for block in _blocks("bash")[1:]
        for line in block.splitlines()
        if line.strip().startswith("attnpotts ")
    ]


def test_session_commands_are_found() -> None:
    names = [shlex.split(c)[1] for c in _session_commands()]
    assert names == ["sample", "train", "evaluate", "theory", "contacts", "reproduce"]


@pytest.mark.slow
def test_shell_session_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for command in _session_commands():
        argv = [
            str(ROOT / tok) if tok.startswith("src/") else tok for tok in shlex.split(command)[1:]
        ]
        assert main([*argv, "--no-progress"]) == 0, command
        out = Path(argv[argv.index("--out") + 1])
        assert (out / "summary.json").exists(), command
    assert os.path.exists("runs/quick/report.html")
