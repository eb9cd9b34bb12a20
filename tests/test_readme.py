"""The README works when followed literally.

* fast: the two opening commands, every ``attnpotts`` command and option the README mentions
  exists (``--help``), and the Python examples run;
* slow: the marked shell session runs literally, top to bottom, in a fresh ``bash`` with a fresh
  virtual environment, in a ``git clone`` of this repository with nothing beside it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from attnpotts.cli.main import SUBCOMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
#: The comment that marks a shell block of the literal session.
SESSION_MARK = "<!-- readme-session -->"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def _session_blocks() -> list[str]:
    return re.findall(rf"{re.escape(SESSION_MARK)}\n```bash\n(.*?)```", README, re.S)


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


def _readme_commands() -> list[list[str]]:
    """Every ``attnpotts ...`` command of the README: code blocks and inline code, as argv."""
    texts = [ln for block in re.findall(r"```[a-z]*\n(.*?)```", README, re.S) for ln in block.splitlines()]
    texts += re.findall(r"`([^`\n]*attnpotts [^`\n]*)`", README)
    commands = []
    for text in texts:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token and set(token) <= set(";&|()<>"):  # end of one simple command
                names = [k for k, w in enumerate(words) if w.split("/")[-1] == "attnpotts"]
                if names:
                    commands.append(words[names[0] + 1 :])
                words = []
            else:
                words.append(token)
    return commands


def test_every_readme_command_and_option_exists(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _readme_commands()
    assert len(commands) >= 10
    seen = set()
    for argv in commands:
        if not argv or argv[0] in ("--version", "COMMAND"):
            continue
        command = argv[0]
        assert command in SUBCOMMANDS, f"README names an unknown command: attnpotts {command}"
        with pytest.raises(SystemExit) as exc:
            build_parser(command).parse_args([command, "--help"])
        assert exc.value.code == 0
        help_text = capsys.readouterr().out
        for word in argv[1:]:
            if word.startswith("--"):
                flag = word.split("=", 1)[0]
                assert re.search(rf"{re.escape(flag)}\b", help_text), (
                    f"attnpotts {command} --help has no {flag} (README: {shlex.join(argv)})"
                )
        seen.add(command)
    assert seen == set(SUBCOMMANDS)  # the README shows every command


def test_session_is_marked_and_complete() -> None:
    blocks = _session_blocks()
    assert blocks[0].splitlines()[0].startswith("bash scripts/setup.sh")
    names = [
        shlex.split(ln)[1]
        for block in blocks
        for ln in block.splitlines()
        if ln.strip().startswith("attnpotts ")
    ]
    assert names == ["--version", "sample", "train", "evaluate", "theory", "contacts", "reproduce"]


def _fresh_environment(home: Path) -> dict[str, str]:
    """What a new login shell on this machine has: system PATH (no virtual environment), HOME, the
    locale and the machine's pip settings; nothing of this test process (PYTHONPATH, venv)."""
    keep = {"HOME", "LANG", "LC_ALL", "TMPDIR", "USER"}
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_")}
    venv = os.environ.get("VIRTUAL_ENV")
    paths = [
        p
        for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
        if p and ".venv" not in p and (venv is None or not p.startswith(venv))
    ]
    env["PATH"] = os.pathsep.join(paths)
    env.setdefault("HOME", str(home))
    return env


#: pip's words when it cannot reach a package index at all (no network, no name resolution).
_UNREACHABLE = ("Temporary failure in name resolution", "Failed to establish a new connection",
                "Network is unreachable")


def _index_unreachable(log: str) -> bool:
    """Whether a failed setup failed because no package index could be reached (a machine
    without network and without a local torch wheel), not because of the repository."""
    return any(msg in log for msg in _UNREACHABLE)


def test_only_an_unreachable_index_excuses_a_failed_setup() -> None:
    """The clone test skips on a machine without network (its log, as on an offline GPU
    machine), never on a failure of the repository's own setup."""
    offline = ("setup: installing torch==2.13.0 from https://download.pytorch.org/whl/cpu\n"
               "WARNING: Retrying (Retry(total=0)) after connection broken by 'NewConnectionError("
               "'<HTTPSConnection>: Failed to establish a new connection: [Errno -3] Temporary "
               "failure in name resolution')': /whl/cpu/torch/\n"
               "ERROR: No matching distribution found for torch==2.13.0\n")
    assert _index_unreachable(offline)
    assert not _index_unreachable("ERROR: No matching distribution found for torch==9.9.9\n")
    assert not _index_unreachable("error: subprocess-exited-with-error\n")


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_readme_session_runs_literally_in_a_fresh_clone(tmp_path: Path) -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():  # a copy of the files, not a checkout
        pytest.skip("clones this repository: needs git and a git checkout")
    clone = tmp_path / "attnpotts"
    subprocess.run([git, "clone", "--quiet", str(ROOT), str(clone)], check=True)
    assert not (clone / ".venv").exists()
    script = "set -euo pipefail\n" + "\n".join(_session_blocks())
    (tmp_path / "session.sh").write_text(script)
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", str(tmp_path / "session.sh")],
        cwd=clone,
        env=_fresh_environment(tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    log = proc.stdout + proc.stderr
    (tmp_path / "session.log").write_text(log)
    if proc.returncode != 0 and _index_unreachable(log):
        pytest.skip("the README's setup needs a package index (or a local torch wheel) and this "
                    "machine reaches none")
    assert proc.returncode == 0, log[-6000:]
    # the examples do what the README says they do
    train = json.loads((clone / "runs/factored/summary.json").read_text())
    assert train["stop_reason"] in ("converged", "early_stopping"), train  # not the epoch cap
    evaluation = json.loads((clone / "runs/factored-eval/summary.json").read_text())
    assert evaluation["recovery"]["as_learned"]["coupling_correlation"] > 0.9
    assert "+-" in log or "±" in log  # numbers with their uncertainties
    assert "DeprecationWarning" not in log  # e.g. setuptools on the license field
    assert "r(A, Jsite) 0." in log and "[" not in log.split("r(A, Jsite)")[1].splitlines()[0]
    contacts = json.loads((clone / "runs/contacts/summary.json").read_text())
    assert contacts["precision"]["L"] > 0.9
    assert (clone / "runs/quick/report.html").is_file()
