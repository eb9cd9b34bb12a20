"""One test per reproducer of bad input: typed options, resource limits, devices, bad files."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from attnpotts.alignment import read_alignment, read_distance_table, read_structure
from attnpotts.alignment.examples import example_files
from attnpotts.cli.common import EXIT_CODES, exit_code_for
from attnpotts.cli.main import main
from attnpotts.errors import DataFormatError
from attnpotts.potts import PottsModel
from attnpotts.training import TrainingConfig, train
from attnpotts.training.checkpoint import load_checkpoint, load_model, save_checkpoint

ALN = str(example_files("PF00014").alignment)
BAD = EXIT_CODES["bad_input"]


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------ typed options (flags and TOML)
@pytest.mark.parametrize(
    ("command", "toml", "message"),
    [
        ("contacts", 'focus = "false"', "focus must be true or false"),
        ("train", "epochs = 1.5", "epochs must be an integer"),
        ("train", 'alphabet = "Protein"', "did you mean 'protein'"),
        ("train", 'lr = "0.01"', "lr must be a number"),
        ("train", "heads = 0", "heads must be an integer >= 1"),
        ("sample", "n_sites = true", "n_sites must be an integer"),
        ("theory", "lam = [0.1, \"x\"]", "lam must be a list"),
        ("theory", "memory_limit_gb = -1", "memory_limit_gb must be a number"),
    ],
)
def test_toml_values_are_typed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, toml: str, message: str
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml + "\n")
    argv = {
        "contacts": ["contacts", ALN], "train": ["train", "--data", ALN],
        "sample": ["sample"], "theory": ["theory"],
    }[command]  # fmt: skip
    assert main([*argv, "--config", str(cfg), "--out", str(tmp_path / "o")]) == BAD
    err = _one_line_error(capsys)
    assert message in err and "c.toml" in err
    assert not (tmp_path / "o").exists()


def test_flag_values_are_checked_like_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", ALN, "--heads", "0", "--out", str(tmp_path / "o")]) == BAD
    err = _one_line_error(capsys)
    assert "heads must be an integer >= 1" in err and "from --heads" in err


def test_config_file_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(b'alpha = ["1\xff"]\n')
    assert main(["theory", "--config", str(cfg), "--out", str(tmp_path / "o")]) == BAD
    assert "not UTF-8" in _one_line_error(capsys)
    assert main(["theory", "--config", "/dev/zero", "--out", str(tmp_path / "o")]) == BAD
    assert "not a regular file" in _one_line_error(capsys)
    assert main(["theory", "--config", str(tmp_path), "--out", str(tmp_path / "o")]) == BAD
    assert "is a folder" in _one_line_error(capsys)


# ------------------------------------------------------------------------- resources, devices
@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "--n-sites", "3000"],
        ["sample", "--n-chains", "1000000000"],
        ["sample", "--n-train", "1000000000000"],
        ["theory", "--states", "1000"],
        ["theory", "--alpha", "0.5:8:100000000"],
        ["theory", "--simulate", "1000000"],
        ["train", "--data", ALN, "--heads", "1000000000"],
    ],
)
def test_oversized_runs_are_refused_before_allocating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main([*argv, "--out", str(tmp_path / "o")]) == BAD
    err = _one_line_error(capsys)
    assert "--memory-limit-gb" in err or "fewer points" in err
    assert not (tmp_path / "o").exists()


def test_oversized_reproduce_is_refused_before_sampling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "big.toml"
    cfg.write_text("n_train = 100000000\n")
    out = tmp_path / "o"
    assert main(["reproduce", "--config", str(cfg), "--out", str(out), "--workers", "1"]) == BAD
    err = _one_line_error(capsys)
    assert "reproduce with 1 worker(s) would need" in err and "--memory-limit-gb" in err
    assert not out.exists()


def test_memory_limit_option_is_honoured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sample", "--n-sites", "300", "--out", str(tmp_path / "o")]
    assert main([*argv, "--memory-limit-gb", "0.1"]) == BAD
    assert "above --memory-limit-gb 0.1" in _one_line_error(capsys)


def test_training_on_a_cuda_device_is_refused_above_its_free_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``train``'s check also compares its estimate with the CUDA device's free memory."""
    import attnpotts.dca.memory as memory
    from attnpotts.errors import ResourceLimitError
    from attnpotts.workflows.resources import check_train_resources, train_bytes

    values = {"model": "factored", "n_heads": 8, "batch_size": 256, "device": "cuda:0"}
    need = train_bytes(values, 1000, 50, 21)
    asked: list[str] = []

    def free(device: str | None) -> int | None:
        asked.append(str(device))
        return int(need) if str(device).startswith("cuda") else None

    monkeypatch.setattr(memory, "device_free_bytes", free)
    check_train_resources(values, 1000, 50, 21, None)  # fits exactly
    check_train_resources({**values, "device": "cpu"}, 4000, 50, 21, None)  # no device check
    with pytest.raises(ResourceLimitError, match=r"GiB on cuda:0 \(4000 sequences.*GiB free; .*--device cpu"):
        check_train_resources(values, 4000, 50, 21, None)
    assert asked == ["cuda:0", "cpu", "cuda:0"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_without_cuda_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", ALN, "--device", "cuda", "--out", str(tmp_path / "o")]) == BAD
    assert "no usable CUDA device" in _one_line_error(capsys)


def test_unknown_device_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", ALN, "--device", "tpu9", "--out", str(tmp_path / "o")]) == BAD
    assert "--device" in _one_line_error(capsys)


def test_divergence_has_its_own_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    aln = tmp_path / "a.fasta"
    rows = ["".join(rng.choice(list("ACDEFGHIK"), 12)) for _ in range(60)]
    aln.write_text("".join(f">s{k}\n{r}\n" for k, r in enumerate(rows)))
    argv = ["train", "--data", str(aln), "--lr", "1e6", "--epochs", "3", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == EXIT_CODES["diverged"]
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["stop_reason"] == "diverged"


def test_unexpected_errors_are_reported_as_bugs(monkeypatch: pytest.MonkeyPatch) -> None:
    code, message = exit_code_for(KeyError("x"))
    assert code == EXIT_CODES["bug"] and "bug" in message and "ATTNPOTTS_DEBUG" in message
    assert exit_code_for(MemoryError())[0] == EXIT_CODES["out_of_memory"]
    assert exit_code_for(KeyboardInterrupt())[0] == EXIT_CODES["interrupted"]


def test_gpu_out_of_memory_is_not_reported_as_a_bug() -> None:
    """torch's CUDA out-of-memory error is a RuntimeError; it gets the out-of-memory exit."""
    oom = torch.cuda.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 15.7 GiB"
    )
    code, message = exit_code_for(oom)
    assert code == EXIT_CODES["out_of_memory"]
    assert message.startswith("the GPU ran out of memory (CUDA out of memory);")
    assert "--device cpu" in message and "bug" not in message


# ---------------------------------------------------------------------------- distances TSV
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("1\t3\tnan", "finite number >= 0"),
        ("1\t3\tinf", "finite number >= 0"),
        ("1\t3\t-1", "finite number >= 0"),
        ("2\t2\t4", "i == j"),
        ("1\t3\t4\n3\t1\t5", "given twice with different distances"),
        ("1\t1000000\t5", "GiB"),
    ],
)
def test_bad_distances_are_refused(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "d.tsv"
    path.write_text("i\tj\td\n" + body + "\n")
    with pytest.raises(DataFormatError, match=message):
        read_distance_table(path)


def test_distances_special_and_binary_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataFormatError, match="not a regular file"):
        read_distance_table("/dev/zero")
    path = tmp_path / "d.tsv"
    path.write_bytes(b"i\tj\td\xe9\n1\t2\t3\n")
    with pytest.raises(DataFormatError, match="not UTF-8"):
        read_distance_table(path)
    path.write_text("i\tj\td\n1\t3\t4\n3\t1\t4\n")  # an identical repeat is fine
    assert read_distance_table(path).maps["d"][0, 2] == 4
    out = tmp_path / "o"
    rc = main(["contacts", ALN, "--distances", "/dev/zero", "--max-iter", "1", "--out", str(out)])
    assert rc == BAD and "not a regular file" in _one_line_error(capsys)


# ------------------------------------------------------------------------------- alignments
def test_corrupt_gzip_is_a_data_format_error(tmp_path: Path) -> None:
    data = Path(ALN).read_bytes()
    for cut, name in ((len(data) // 2, "truncated"), (None, "flipped")):
        path = tmp_path / f"{name}.fasta.gz"
        if cut is None:
            raw = bytearray(data)
            raw[len(raw) // 2] ^= 0xFF
            path.write_bytes(bytes(raw))
        else:
            path.write_bytes(data[:cut])
        with pytest.raises(DataFormatError, match="gzip") as info:
            read_alignment(path)
        assert str(path) in str(info.value)
    assert issubclass(zlib.error, Exception)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("nul.fasta", ">a\x00b\nACD\n>c\nACD\n", "control character"),
        ("nulseq.fasta", ">a\nAC\x00\n>c\nACD\n", "control character"),
        ("dup.fasta", ">a\nACD\n>a\nACE\n", "appears twice"),
        ("two.sto", "# STOCKHOLM 1.0\na ACD\n//\n# STOCKHOLM 1.0\nb ACE\n//\n", "after the '//'"),
        ("dupblock.sto", "# STOCKHOLM 1.0\na ACD\na ACE\n//\n", "twice in one block"),
    ],
)
def test_bad_alignments_are_refused(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataFormatError, match=message):
        read_alignment(path)


def test_interleaved_stockholm_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "i.sto"
    path.write_text("# STOCKHOLM 1.0\na AC\nb AD\n\na DE\nb EF\n//\n")
    assert read_alignment(path).sequences() == ["ACDE", "ADEF"]


def test_alignment_special_files_and_size_bound(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="not a regular file"):
        read_alignment("/dev/zero", format="fasta")
    bomb = tmp_path / "bomb.fasta.gz"
    bomb.write_bytes(gzip.compress(b">a\n" + b"A" * 5_000_000 + b"\n"))
    from attnpotts.alignment.io import read_raw_alignment

    with pytest.raises(DataFormatError, match="more than 1000000 bytes"):
        read_raw_alignment(bomb, max_bytes=1_000_000)


# ------------------------------------------------------------------------------- structures
def test_structure_with_non_utf8_names(tmp_path: Path) -> None:
    text = (
        b"ATOM      1  CA  ALA A   1       0.000   0.000   0.000  1.00  0.00           C\n"
        b"ATOM      2  CA  GLY A   2       3.800   0.000   0.000  1.00  0.00           C\n"
        b"END\n"
    )
    path = tmp_path / "s.pdb"
    path.write_bytes(text.replace(b"ALA", b"\xff\xfeA"))
    with pytest.raises(DataFormatError, match="not UTF-8"):
        read_structure(path)
    with pytest.raises(DataFormatError, match="not a regular file"):
        read_structure("/dev/zero")


# ------------------------------------------------------------------------------ Potts .npz
def _model() -> PottsModel:
    rng = np.random.default_rng(1)
    site = rng.normal(size=(2, 4, 4))
    site = (site + site.transpose(0, 2, 1)) / 2
    site[:, np.arange(4), np.arange(4)] = 0
    colour = rng.normal(size=(2, 3, 3))
    return PottsModel.from_factors(site, colour + colour.transpose(0, 2, 1), beta=0.5)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda a: a.update(couplings=a["couplings"].astype(np.complex128)), "dtype"),
        (lambda a: a.update(fields=a["fields"].astype(np.int64)), "dtype"),
        (lambda a: a.update(extra=np.zeros(3)), "unexpected array"),
        (lambda a: a.pop("metadata"), "missing array"),
        (lambda a: a.update(fields=np.zeros((5, 3))), "shapes"),
        (lambda a: a.update(metadata=np.array(json.dumps({"format": "attnpotts.potts", "kind": "PottsModel", "n_sites": 4, "n_states": 3}))), "beta"),
        (lambda a: a.update(metadata=np.array(json.dumps({"format": "attnpotts.potts", "kind": "PottsModel", "beta": 1, "n_sites": 9, "n_states": 3}))), "metadata says"),
        (lambda a: a.update(site_couplings=a["site_couplings"] * 2), "product of the stored factors"),
        (lambda a: a.update(fields=np.full((4, 3), np.nan)), "NaN"),
    ],
)  # fmt: skip
def test_bad_potts_files_are_refused(tmp_path: Path, edit, message: str) -> None:
    path = _model().save(tmp_path / "m.npz")
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    edit(arrays)
    np.savez(path, **arrays)
    with pytest.raises(DataFormatError, match=message):
        PottsModel.load(path)


def test_potts_header_declaring_terabytes_is_refused_before_reading(tmp_path: Path) -> None:
    path = _model().save(tmp_path / "m.npz")
    with pytest.raises(DataFormatError, match="above the limit"):
        PottsModel.load(path, max_bytes=100)


# ------------------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from attnpotts.models import FactoredAttention

    path = tmp_path_factory.mktemp("ck") / "model.pt"
    states = np.random.default_rng(0).integers(0, 3, size=(40, 5))
    model = FactoredAttention(n_sites=5, n_states=3, seed=0)
    train(model, states, config=TrainingConfig(max_epochs=2, batch_size=20), checkpoint_path=path)
    return path


def _rewrite(src: Path, dst: Path, edit) -> Path:
    data = torch.load(src, weights_only=True)
    edit(data)
    data.pop("tensor_checksum", None)
    save_checkpoint(dst, {k: v for k, v in data.items() if k not in ("format", "format_version")})
    return dst


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("model_dtype"), "missing 'model_dtype'"),
        (lambda d: d.update(model_dtype="complex64"), "model dtype"),
        (lambda d: d.update(model_kind="os.system"), "unknown model kind"),
        (lambda d: d.update(model_hparams=json.dumps({**json.loads(d["model_hparams"]), "n_sites": 10**9})), "does not fit"),
        (lambda d: d["model_state"].update({next(iter(d["model_state"])): torch.zeros(2, dtype=torch.complex64)}), "dtype"),
        (lambda d: d.update(model_hparams="[1, 2]"), "JSON object"),
        (lambda d: d.update(model_hparams=json.dumps({**json.loads(d["model_hparams"]), "n_heads": "x"})), "do not build"),
    ],
)  # fmt: skip
def test_bad_checkpoints_are_refused(tmp_path: Path, checkpoint: Path, edit, message: str) -> None:
    path = _rewrite(checkpoint, tmp_path / "bad.pt", edit)
    with pytest.raises(DataFormatError, match=message):
        load_model(path)


def test_checkpoint_checksum_and_resume_keys(tmp_path: Path, checkpoint: Path) -> None:
    data = torch.load(checkpoint, weights_only=True)
    key = next(iter(data["model_state"]))
    data["model_state"][key] = data["model_state"][key] + 1  # tampered, checksum kept
    torch.save(data, tmp_path / "t.pt")
    with pytest.raises(DataFormatError, match="checksum mismatch"):
        load_checkpoint(tmp_path / "t.pt")
    path = _rewrite(checkpoint, tmp_path / "nobeta.pt", lambda d: d.pop("best_loss"))
    load_checkpoint(path)  # enough to rebuild the model
    with pytest.raises(DataFormatError, match="missing 'best_loss'"):
        load_checkpoint(path, resume=True)


def test_old_checkpoint_without_checksum_loads_with_a_warning(
    tmp_path: Path, checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = torch.load(checkpoint, weights_only=True)
    data.pop("tensor_checksum")
    torch.save(data, tmp_path / "old.pt")
    load_model(tmp_path / "old.pt")
    assert "no checksum" in caplog.text


def test_resume_on_other_data_is_refused(tmp_path: Path, checkpoint: Path) -> None:
    from attnpotts.errors import ValidationError
    from attnpotts.models import FactoredAttention

    other = np.random.default_rng(5).integers(0, 3, size=(40, 5))
    model = FactoredAttention(n_sites=5, n_states=3, seed=0)
    with pytest.raises(ValidationError, match="trained on other data"):
        train(model, other, config=TrainingConfig(max_epochs=3, batch_size=20), resume_from=checkpoint)


def test_loading_a_checkpoint_is_checked_against_the_memory_limit(
    tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--data", ALN, "--resume", str(checkpoint), "--memory-limit-gb", "1e-6"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == BAD
    assert "loading --resume" in _one_line_error(capsys)
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").write_bytes(checkpoint.read_bytes())
    argv = ["evaluate", "--run", str(run), "--memory-limit-gb", "1e-6", "--out", str(tmp_path / "e")]
    assert main(argv) == BAD
    assert "loading the checkpoint" in _one_line_error(capsys)


# ----------------------------------------------------------------------- option tables vs flags
#: Flags that are not typed option values (files checked by their readers, run control; the
#: process-wide ``threads`` is checked by its own spec, ``attnpotts.options.thread_count``).
_UNTYPED = {
    "help", "config", "out", "overwrite", "no_progress", "verbose", "command", "func",
    "alignment", "distances", "structure", "structure_sequence", "chain", "distance_column",
    "run", "data", "address", "executor", "full", "quick", "stages", "workers", "device",
    "threads",
}  # fmt: skip


@pytest.mark.parametrize("command", ["sample", "train", "evaluate", "theory", "contacts"])
def test_every_flag_has_a_typed_option_entry(command: str) -> None:
    """Every flag of a command sets a typed field of its options class (the flags are generated
    from the fields; this catches a flag added by hand)."""
    from attnpotts.cli.main import build_parser
    from attnpotts.options import option_specs
    from attnpotts.workflows import (
        ContactsOptions,
        EvaluateOptions,
        SampleOptions,
        TheoryOptions,
        TrainOptions,
    )

    cls = {"sample": SampleOptions, "train": TrainOptions, "evaluate": EvaluateOptions,
           "theory": TheoryOptions, "contacts": ContactsOptions}[command]  # fmt: skip
    parser = build_parser(command)
    sub = parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    dests = {a.dest for a in sub._actions} - _UNTYPED
    known = set(option_specs(cls))
    assert dests <= known, f"flags of {command} without a typed entry: {sorted(dests - known)}"
