"""``attnpotts sample`` end to end on tiny settings."""

from __future__ import annotations

import json

import numpy as np

from attnpotts.cli import main
from attnpotts.sampling import SampledDataset

TINY = [
    "--n-sites", "6", "--n-states", "3", "--n-train", "40", "--n-test", "10", "--n-chains", "8",
    "--pilot-sweeps", "20", "--no-progress",
]  # fmt: skip


def test_sample_writes_the_folder_and_prints_a_summary(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    rc = main(
        [
            "sample",
            "--out",
            str(out),
            "--seed",
            "3",
            "--target-distance",
            "none",
            "--beta",
            "0.5",
            *TINY,
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "40 train, 10 test" in text and "beta       0.5000" in text
    ds = SampledDataset.load(out)
    assert ds.train.shape == (40, 6) and ds.manifest["seed"] == 3
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["beta"] == 0.5 and cfg["config"]["target_distance"] is None


def test_calibrated_run_and_config_file(tmp_path, capsys) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('target_distance = 0.6\nbeta_max = 4.0\nsite = "dense"\n')
    out = tmp_path / "run"
    rc = main(["sample", "--config", str(conf), "--out", str(out), *TINY])
    assert rc == 0, capsys.readouterr().err
    assert "calibrated" in capsys.readouterr().out
    m = SampledDataset.load(out).manifest
    assert m["config"]["site"] == "dense" and m["calibration"]["target"] == 0.6
    # flags override the file
    out2 = tmp_path / "run2"
    assert main(["sample", "--config", str(conf), "--site", "sparse", "--target-distance", "none",
                 "--out", str(out2), *TINY]) == 0  # fmt: skip
    assert SampledDataset.load(out2).manifest["config"]["site"] == "sparse"


def test_same_seed_same_sequences(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert main(["sample", "--out", str(out), "--target-distance", "none", *TINY]) == 0
    np.testing.assert_array_equal(SampledDataset.load(a).train, SampledDataset.load(b).train)


def test_errors_are_clear_and_leave_nothing(tmp_path, capsys) -> None:
    conf = tmp_path / "bad.toml"
    conf.write_text("n_seqs = 3\n")
    assert main(["sample", "--config", str(conf), "--out", str(tmp_path / "x"), *TINY]) == 2
    assert "unknown option(s) n_seqs" in capsys.readouterr().err
    assert (
        main(["sample", "--n-train", "-3", "--out", str(tmp_path / "x"), *TINY[:4], *TINY[6:]]) == 2
    )
    assert "n_train must be an integer >= 1" in capsys.readouterr().err
    assert main(["sample", "--target-distance", "0.9", "--out", str(tmp_path / "x"), *TINY]) == 2
    assert "not reachable" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.toml"]
    out = tmp_path / "exists"
    out.mkdir()
    (out / "keep").write_text("x")
    assert main(["sample", "--out", str(out), "--target-distance", "none", *TINY]) == 2
    assert "--overwrite" in capsys.readouterr().err
    # --overwrite never deletes a folder attnpotts did not write
    assert (
        main(["sample", "--out", str(out), "--overwrite", "--target-distance", "none", *TINY]) == 2
    )
    assert "not written by attnpotts" in capsys.readouterr().err
    assert (out / "keep").read_text() == "x"
