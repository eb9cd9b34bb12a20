"""Output folders: never delete what attnpotts did not write, one writer per folder, umask."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from attnpotts.alignment.examples import example_files
from attnpotts.cli.common import EXIT_CODES
from attnpotts.cli.main import main
from attnpotts.storage import (
    OUTPUT_MARKER,
    OutputFolderError,
    OutputLockedError,
    atomic_output_dir,
    atomic_write_text,
    check_output_dir,
    output_lock,
)

ALN = str(example_files("PF00014").alignment)
SAMPLE_FLAGS = ["--n-sites", "4", "--n-states", "3", "--n-train", "20", "--n-test", "5",
                "--n-chains", "4", "--pilot-sweeps", "16", "--no-progress"]  # fmt: skip


def _commands(out: Path, tmp_path: Path) -> dict[str, list[str]]:
    return {
        "sample": ["sample", *SAMPLE_FLAGS, "--out", str(out)],
        "train": ["train", "--data", ALN, "--epochs", "1", "--out", str(out)],
        "evaluate": ["evaluate", "--run", str(tmp_path / "no-run"), "--out", str(out)],
        "theory": ["theory", "--alpha", "1", "--out", str(out)],
        "contacts": ["contacts", ALN, "--max-iter", "1", "--out", str(out)],
    }


@pytest.mark.parametrize("command", ["sample", "train", "evaluate", "theory", "contacts"])
def test_overwrite_never_deletes_a_foreign_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    v = tmp_path / "v"
    v.mkdir()
    (v / "thesis.tex").write_text("years of work")
    argv = _commands(v, tmp_path)[command]
    assert main([*argv, "--overwrite"]) == EXIT_CODES["bad_input"]
    err = capsys.readouterr().err
    assert "not written by attnpotts" in err and "nothing was deleted" in err
    assert err.count("\n") == 1  # one line, no traceback
    assert (v / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in v.iterdir()) == ["thesis.tex"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v"]  # no lock or temporary left


@pytest.mark.parametrize("command", ["sample", "train", "theory", "contacts"])
def test_out_naming_a_file_or_the_current_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("keep")
    assert main(_commands(f, tmp_path)[command]) == EXIT_CODES["bad_input"]
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(_commands(f / "sub", tmp_path)[command]) == EXIT_CODES["bad_input"]
    assert "notes.txt is a file, not a folder" in capsys.readouterr().err
    assert f.read_text() == "keep"
    monkeypatch.chdir(tmp_path)
    assert main([*_commands(Path("."), tmp_path)[command], "--overwrite"]) == 2
    assert "current folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_overwrite_replaces_an_attnpotts_folder(tmp_path: Path) -> None:
    out = tmp_path / "t"
    assert main(["theory", "--alpha", "1", "--no-progress", "--out", str(out)]) == 0
    assert (out / OUTPUT_MARKER).is_file()
    (out / "extra.txt").write_text("x")
    assert main(["theory", "--alpha", "1", "--no-progress", "--out", str(out), "--overwrite"]) == 0
    assert not (out / "extra.txt").exists() and (out / "theory.tsv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]


def test_a_second_writer_of_the_same_out_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with output_lock(out):
        # flock conflicts between open file descriptions, so this stands for another process
        assert main(["train", "--data", ALN, "--epochs", "1", "--out", str(out)]) == EXIT_CODES[
            "locked"
        ]
        err = capsys.readouterr().err
        assert "being written by another attnpotts process" in err and f"pid {os.getpid()}" in err
        with pytest.raises(OutputLockedError), output_lock(out):
            pass
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the lock file is removed on release
    with output_lock(out):  # and can be taken again
        pass


def test_an_out_that_cannot_be_created_names_the_folder_not_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("mine\n")
    lock = output_lock(blocker / "sub" / "run")
    with pytest.raises(OutputFolderError, match=r"cannot create output folder .*choose another --out"), lock:
        pass
    assert blocker.read_text() == "mine\n"
    if Path("/proc/self").is_dir():  # a virtual file system: no folder can be made there
        assert main(["sample", *SAMPLE_FLAGS, "--out", "/proc/attnpotts-run"]) == EXIT_CODES["bad_input"]
        err = capsys.readouterr().err
        assert "cannot create output folder /proc/attnpotts-run" in err and ".lock" not in err


def test_a_users_file_with_the_locks_name_is_never_truncated_or_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = tmp_path / ".run.lock"
    theirs.write_text("my notes\n")
    out = tmp_path / "run"
    assert main(["sample", *SAMPLE_FLAGS, "--out", str(out)]) == EXIT_CODES["bad_input"]
    assert "is not an attnpotts lock file" in capsys.readouterr().err
    assert theirs.read_text() == "my notes\n" and not out.exists()
    theirs.write_text("4242\n")  # a killed attnpotts run's lock (the kernel released it): taken
    with output_lock(out):
        assert theirs.read_text() == f"{os.getpid()}\n"
    assert not theirs.exists()


def test_check_output_dir_rules(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_output_dir(empty) == empty
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    mine = tmp_path / "mine"
    with atomic_output_dir(mine) as tmp:
        atomic_write_text(tmp / "a.txt", "a")
    with pytest.raises(OutputFolderError, match="--overwrite"):
        check_output_dir(mine)
    check_output_dir(mine, overwrite=True)
    (mine / OUTPUT_MARKER).unlink()
    with pytest.raises(OutputFolderError, match="not written by attnpotts"):
        check_output_dir(mine, overwrite=True)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_outputs_respect_the_umask(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        out = tmp_path / "o"
        with atomic_output_dir(out) as tmp:
            atomic_write_text(tmp / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((out / "f.txt").stat().st_mode) == 0o666 & ~mask


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_write_failures_are_clean_io_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def fail(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", fail)  # every atomic write fsyncs before renaming
    out = tmp_path / "x"
    assert main(["theory", "--alpha", "1", "--no-progress", "--out", str(out)]) == EXIT_CODES[
        "io_error"
    ]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and errno.errorcode[code] in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half-written, no lock


def test_a_successful_resume_removes_the_killed_runs_temporary_folder(tmp_path: Path) -> None:
    import shutil

    rng = np.random.default_rng(0)
    aln = tmp_path / "a.fasta"
    aln.write_text("".join(f">s{k}\n{''.join(rng.choice(list('ACDEFG'), 8))}\n" for k in range(40)))
    base = ["train", "--data", str(aln), "--no-progress", "--batch-size", "20"]
    assert main([*base, "--epochs", "1", "--out", str(tmp_path / "first")]) == 0
    stale = tmp_path / ".o.tmp-killed"  # what a run of --out o killed after epoch 1 leaves
    stale.mkdir()
    shutil.copy(tmp_path / "first" / "model.pt", stale / "model.pt")
    other = tmp_path / ".other.tmp-x"  # not this run's: kept
    other.mkdir()
    assert main([*base, "--epochs", "2", "--resume", str(stale / "model.pt"), "--out", str(tmp_path / "o")]) == 0
    assert not stale.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-x", "a.fasta", "first", "o"]
