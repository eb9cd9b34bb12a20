"""``attnpotts train`` and ``attnpotts evaluate`` end to end on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attnpotts.cli.main import main
from attnpotts.potts import ConditionalPotts, ExactPotts, PottsModel
from attnpotts.sampling import SampledDataset
from attnpotts.training import load_model

L, Q = 5, 3


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    site = rng.normal(size=(L, L))
    site = (site + site.T) / 2
    np.fill_diagonal(site, 0)
    colour = rng.normal(size=(Q, Q))
    true = PottsModel.from_factors(site, colour + colour.T, beta=0.8)
    exact = ExactPotts(true)
    d = tmp_path_factory.mktemp("data") / "sample"
    ds = SampledDataset(
        true, exact.sample(400, seed=1), exact.sample(200, seed=2), {"note": "test"}
    )
    ds.save(d)
    return d


def _summary(path: Path) -> dict:
    return json.loads((path / "summary.json").read_text())


def test_train_factored_then_evaluate(
    sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fa"
    rc = main(
        [
            "train",
            "--data",
            str(sample_dir),
            "--out",
            str(out),
            "--epochs",
            "3",
            "--no-progress",
            "--dtype",
            "float64",
            "--heads",
            "2",
        ]
    )
    assert rc == 0
    assert "test loss" in capsys.readouterr().out
    s = _summary(out)
    assert s["epochs"] == 3 and s["stop_reason"] == "max_epochs"
    assert (
        s["data"]["n_train"] == 360
        and s["data"]["n_validation"] == 40
        and s["data"]["n_test"] == 200
    )
    assert s["test_loss"]["mean"] > s["optimal_loss"]["mean"] - 4 * s["optimal_loss"]["stderr"]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["n_heads"] == 2 and cfg["seed"] == 0
    model = load_model(out / "model.pt")
    potts = ConditionalPotts.load(out / "potts.npz")
    states = np.asarray(SampledDataset.load(sample_dir).test)
    from attnpotts.inference import mlm_loss

    assert mlm_loss(model, states) == pytest.approx(
        -potts.pseudo_log_likelihood(states, reduction="mean"), rel=1e-10
    )
    assert isinstance(PottsModel.load(out / "potts_symmetrized.npz"), PottsModel)

    ev = tmp_path / "ev"
    assert main(["evaluate", "--run", str(out), "--out", str(ev)]) == 0
    e = _summary(ev)
    assert e["test_loss"]["mean"] == pytest.approx(s["test_loss"]["mean"], rel=1e-12)
    rec = e["recovery"]["as_learned"]
    assert len(rec["attention_correlation"]) == 1  # one true component matched to one of 2 heads
    assert set(e["recovery"]) >= {"as_learned", "symmetrized"}


@pytest.mark.parametrize(
    "extra",
    [
        [
            "--model",
            "potts",
            "--optimizer",
            "lbfgs",
            "--batch-size",
            "full",
            "--coupling-l2",
            "1e-3",
        ],
        [
            "--model",
            "transformer",
            "--width",
            "8",
            "--heads",
            "2",
            "--masking",
            "one",
            "--patience",
            "2",
        ],
        [
            "--variant",
            "softmax",
            "--value-rank",
            "2",
            "--masking",
            "bert",
            "--optimizer",
            "adamw",
            "--weight-decay",
            "1e-3",
        ],
    ],
)
def test_train_other_models(sample_dir: Path, tmp_path: Path, extra: list[str]) -> None:
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(sample_dir),
                "--out",
                str(out),
                "--epochs",
                "2",
                "--no-progress",
                *extra,
            ]
        )
        == 0
    )
    s = _summary(out)
    assert np.isfinite(s["final_train_loss"]) and "excess_loss" in s
    assert (out / "potts.npz").exists() == ("transformer" not in extra)


def test_config_file_and_flags(sample_dir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('model = "potts"\nepochs = 1\nbatch_size = 50\n')
    out = tmp_path / "c"
    assert (
        main(
            [
                "train",
                "--data",
                str(sample_dir),
                "--config",
                str(cfg),
                "--out",
                str(out),
                "--epochs",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    s = _summary(out)
    assert s["model"]["kind"] == "potts" and s["epochs"] == 2


def test_train_on_an_alignment_file(tmp_path: Path) -> None:
    from attnpotts.alphabet import PROTEIN

    rng = np.random.default_rng(0)
    states = rng.integers(0, PROTEIN.q, size=(60, 8))
    fasta = tmp_path / "aln.fasta"
    fasta.write_text("".join(f">s{n}\n{s}\n" for n, s in enumerate(PROTEIN.decode(states))))
    out = tmp_path / "aln"
    assert (
        main(
            [
                "train",
                "--data",
                str(fasta),
                "--out",
                str(out),
                "--epochs",
                "1",
                "--no-progress",
                "--model",
                "potts",
            ]
        )
        == 0
    )
    s = _summary(out)
    assert s["data"]["source"] == "alignment" and s["data"]["n_states"] == 21
    assert s["data"]["n_test"] == 12 and "optimal_loss" not in s and s["data"]["n_eff_train"] > 0


def test_resume_through_the_cli(sample_dir: Path, tmp_path: Path) -> None:
    base = [
        "train",
        "--data",
        str(sample_dir),
        "--no-progress",
        "--masking",
        "one",
        "--batch-size",
        "64",
    ]
    assert main([*base, "--out", str(tmp_path / "full"), "--epochs", "4"]) == 0
    assert main([*base, "--out", str(tmp_path / "half"), "--epochs", "2"]) == 0
    assert (
        main(
            [
                *base,
                "--out",
                str(tmp_path / "rest"),
                "--epochs",
                "4",
                "--resume",
                str(tmp_path / "half" / "model.pt"),
            ]
        )
        == 0
    )
    a, b = _summary(tmp_path / "full"), _summary(tmp_path / "rest")
    assert a["final_train_loss"] == b["final_train_loss"]
    assert a["test_loss"] == b["test_loss"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--out", "X"], "--data is required"),
        (["train", "--data", "nowhere", "--out", "X"], "does not exist"),
        (
            [
                "train",
                "--data",
                "DATA",
                "--out",
                "X",
                "--model",
                "transformer",
                "--coupling-l2",
                "1",
            ],
            "weight_decay",
        ),
        (["train", "--data", "DATA", "--out", "X", "--lr", "-1"], "learning_rate"),
        (
            ["train", "--data", "DATA", "--out", "X", "--validation-fraction", "1.5"],
            "validation_fraction",
        ),
        (["evaluate", "--run", "nowhere", "--out", "X"], "not an `attnpotts train` folder"),
    ],
)
def test_cli_errors(
    sample_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    argv = [
        str(sample_dir) if a == "DATA" else str(tmp_path / "o") if a == "X" else a for a in argv
    ]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ("train", "evaluate"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "examples:" in capsys.readouterr().out
