"""The command line answers ``--help``, ``--version`` and bad flags without loading torch or numba.

Importing torch takes 1.5-2 s and numba 0.4 s; a parser needs neither. Each check runs in a
fresh interpreter (this test process has loaded both long ago) and lists the heavy packages that
the parsers pulled in.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from attnpotts.cli.main import SUBCOMMANDS

HEAVY = ("torch", "numba", "scipy", "matplotlib", "dask")

_PROBE = """
import contextlib, io, json, sys
from attnpotts.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "text": out.getvalue(),
                  "loaded": [m for m in HEAVY if m in sys.modules]}))
""".replace("HEAVY", repr(HEAVY))


def _probe(*argv: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("argv", [["--help"], ["--version"], *([c, "--help"] for c in SUBCOMMANDS)],
                         ids=" ".join)
def test_help_and_version_load_no_heavy_package(argv: list[str]) -> None:
    got = _probe(*argv)
    assert got["code"] == 0
    assert got["text"], "nothing printed"
    assert got["loaded"] == [], f"attnpotts {' '.join(argv)} loaded {got['loaded']}"


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_a_misspelt_flag_is_refused_before_any_heavy_import(command: str) -> None:
    got = _probe(command, "--no-such-flag")
    assert got["code"] == 2
    assert "unrecognized option --no-such-flag" in str(got["text"])
    assert got["loaded"] == [], f"attnpotts {command} with a bad flag loaded {got['loaded']}"


def test_the_lazy_packages_still_export_every_name() -> None:
    """Every name in the ``__all__`` of a package that imports on first use resolves."""
    import attnpotts.dca
    import attnpotts.sampling
    import attnpotts.training
    import attnpotts.workflows

    for module in (attnpotts.dca, attnpotts.sampling, attnpotts.training, attnpotts.workflows):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"
        assert sorted(module.__all__) == sorted(n for n in dir(module) if n in module.__all__)
        with pytest.raises(AttributeError, match="no attribute"):
            module.no_such_name  # noqa: B018


def test_a_bad_value_is_refused_before_any_heavy_import() -> None:
    got = _probe("contacts", "family.fasta", "--out", "runs/c", "--lambda-j", "-1")
    assert got["code"] == 2
    assert "lambda_j must be a number >= 0" in str(got["text"])
    assert got["loaded"] == [], f"attnpotts contacts with a bad value loaded {got['loaded']}"
