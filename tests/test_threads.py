"""``set_threads`` sizes torch's and numba's pools, before or after they load; ``--threads`` applies it.

Each check that changes thread counts runs in a fresh interpreter: this test process has loaded
both libraries long ago, and its own counts must stay what the other tests expect.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnpotts.errors import ValidationError
from attnpotts.threads import THREAD_VARS, set_threads, thread_counts


def _python(code: str, *args: str) -> dict[str, object]:
    env_clear = f"import os\nfor v in {THREAD_VARS!r}: os.environ.pop(v, None)\n"
    done = subprocess.run([sys.executable, "-c", env_clear + code, *args], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", None])
def test_a_thread_count_that_is_not_a_positive_integer_is_refused(bad: object) -> None:
    with pytest.raises(ValidationError, match="threads must be an integer >= 1"):
        set_threads(bad)  # type: ignore[arg-type]


def test_before_the_libraries_load_their_pools_start_at_that_size() -> None:
    got = _python(
        "import json, os, sys\n"
        "from attnpotts.threads import set_threads, thread_counts\n"
        "assert 'torch' not in sys.modules and 'numba' not in sys.modules\n"
        "before = thread_counts()\n"
        "set_threads(1)\n"
        "import numba, torch\n"
        "print(json.dumps({'before': before, 'numba_pool': numba.config.NUMBA_NUM_THREADS,\n"
        "                  'after': thread_counts()}))\n"
    )
    # thread_counts reads, never imports: nothing was loaded before the call
    assert got["before"] == {"torch": None, "numba": None, "environment": {}}
    assert got["numba_pool"] == 1
    assert got["after"] == {"torch": 1, "numba": 1,
                            "environment": dict.fromkeys(THREAD_VARS, "1")}


def test_after_the_libraries_load_the_pools_are_resized_within_numbas_size() -> None:
    got = _python(
        "import json, os\n"
        "os.environ['NUMBA_NUM_THREADS'] = '2'\n"
        "import numba, torch\n"
        "torch.set_num_threads(2)\n"
        "from attnpotts.errors import ValidationError\n"
        "from attnpotts.threads import set_threads, thread_counts\n"
        "set_threads(1)\n"
        "one = thread_counts()\n"
        "try:\n"
        "    set_threads(3)\n"
        "    message = None\n"
        "except ValidationError as exc:\n"
        "    message = str(exc)\n"
        "print(json.dumps({'one': one, 'message': message, 'still': thread_counts()}))\n"
    )
    one = got["one"]
    assert isinstance(one, dict) and one["torch"] == 1 and one["numba"] == 1
    # numba's variable is left alone once it runs (numba refuses a new value then)
    assert one["environment"]["NUMBA_NUM_THREADS"] == "2"
    message = str(got["message"])
    assert "numba started with 2 thread(s)" in message and "NUMBA_NUM_THREADS=3" in message
    still = got["still"]
    assert isinstance(still, dict) and (still["torch"], still["numba"]) == (1, 1)


def test_thread_counts_starts_no_thread_pool() -> None:
    """Reading the counts for a manifest must not start numba's pool (a parent that forks later
    would carry a started OpenMP runtime into its children)."""
    got = _python(
        "import json\n"
        "import numba\n"
        "import numba.np.ufunc.parallel as parallel\n"
        "from attnpotts.threads import thread_counts\n"
        "counts = thread_counts()\n"
        "print(json.dumps({'started': parallel._is_initialized, 'numba': counts['numba'],\n"
        "                  'size': numba.config.NUMBA_NUM_THREADS}))\n"
    )
    assert got["started"] is False and got["numba"] == got["size"]


def test_thread_counts_reports_this_process_without_changing_it() -> None:
    import numba
    import torch

    counts = thread_counts()
    assert counts["torch"] == torch.get_num_threads()
    assert counts["numba"] == numba.get_num_threads()


def _family(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = rng.choice(list("ACDEFGHIKL-"), size=(40, 8))
    aln = tmp_path / "aln.fasta"
    aln.write_text("".join(f">s{k}\n{''.join(r)}\n" for k, r in enumerate(rows)))
    return aln


_CLI = (
    "import json, sys\n"
    "from attnpotts.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "print(json.dumps({'code': code}))\n"
)


def test_the_threads_flag_and_toml_key_set_the_run_and_are_recorded(tmp_path: Path) -> None:
    aln = _family(tmp_path)
    out = tmp_path / "flag"
    got = _python(_CLI, "contacts", str(aln), "--out", str(out), "--max-iter", "2",
                  "--no-progress", "--threads", "1")
    assert got["code"] == 0
    env = json.loads((out / "config.json").read_text())["environment"]["threads"]
    assert (env["torch"], env["numba"]) == (1, 1)
    toml = tmp_path / "opts.toml"
    toml.write_text("threads = 1\nmax_iter = 2\n")
    out2 = tmp_path / "toml"
    got = _python(_CLI, "contacts", str(aln), "--out", str(out2), "--config", str(toml),
                  "--no-progress")
    assert got["code"] == 0
    env = json.loads((out2 / "config.json").read_text())["environment"]["threads"]
    assert (env["torch"], env["numba"]) == (1, 1)


@pytest.mark.parametrize(
    ("given", "named"), [(["--threads", "0"], "--threads"), (["toml"], "threads in")]
)
def test_a_bad_thread_count_is_refused_before_any_work(
    tmp_path: Path, given: list[str], named: str
) -> None:
    from attnpotts.cli.main import main

    aln = _family(tmp_path)
    if given == ["toml"]:
        toml = tmp_path / "opts.toml"
        toml.write_text("threads = 0\n")
        given = ["--config", str(toml)]
    out = tmp_path / "out"
    rc = main(["contacts", str(aln), "--out", str(out), *given])
    assert rc == 2 and not out.exists()


def test_a_bad_thread_count_message_names_its_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from attnpotts.cli.main import main

    aln = _family(tmp_path)
    rc = main(["sample", "--out", str(tmp_path / "s"), "--threads", "-2"])
    err = capsys.readouterr().err
    assert rc == 2 and "from --threads" in err and "[1, 4096]" in err
    toml = tmp_path / "opts.toml"
    toml.write_text("threads = 1.5\n")
    rc = main(["contacts", str(aln), "--out", str(tmp_path / "c"), "--config", str(toml)])
    err = capsys.readouterr().err
    assert rc == 2 and f"threads in {toml}" in err and "integer" in err


def test_reproduce_pins_its_workers_itself_and_has_no_threads_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from attnpotts.cli.main import main

    with pytest.raises(SystemExit):
        main(["reproduce", "--threads", "2"])
    assert "unrecognized option --threads" in capsys.readouterr().err
