"""Verdicts on the paper's claims come from the results document by the stated rules: each flips
when the fabricated evidence crosses its threshold."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from attnpotts.experiments.claims import (
    COUPLING_R_MIN,
    EXCESS_REL_TOL,
    VERDICTS,
    Z,
    binomial_quantile,
    evaluate_claims,
)
from attnpotts.experiments.fits import fit_power_law, local_slope
from attnpotts.reports import get_path


def _model(label: str, n_layers: int | None, gap: float, se: float = 0.001, converged: bool = True) -> dict[str, Any]:
    return {
        "label": label, "n_layers": n_layers, "relative_gap_to_factored": gap,
        "relative_gap_stderr": se, "converged": converged,
        "stop_reasons": ["early_stopping" if converged else "max_epochs"],
        "excess_loss": 0.005, "excess_loss_stderr": 0.001,
    }  # fmt: skip


def _scaling_model(excess: list[float], stderr: list[float], sizes: list[int]) -> dict[str, Any]:
    fit = fit_power_law(sizes, excess, stderr)
    last = local_slope(sizes[-2:], excess[-2:], stderr[-2:])
    return {
        "label": "factored attention (1 layer)",
        "points": [
            {"train_size": m, "excess_loss": e, "excess_loss_stderr": s, "n_data_sets": 3, "n_early_stopped": 3}
            for m, e, s in zip(sizes, excess, stderr, strict=True)
        ],
        "fit": None if fit is None else fit.as_dict(),
        "last_slope": None if last is None else last.as_dict(),
    }


def fabricated() -> dict[str, Any]:
    """A results document in which every claim is reproduced."""
    sizes = [300, 1000, 3000, 10000]
    excess = [0.1 * 300 / m for m in sizes]  # exactly 1/M
    return {
        "stages": {
            "depth": {"summary": {
                "optimal_loss": 2.0, "optimal_loss_stderr": 0.01, "match_tolerance": 0.01,
                "models": [
                    _model("factored attention (1 layer)", None, 0.0, 0.0),
                    _model("transformer, 1 layer", 1, 0.05),
                    _model("transformer, 2 layers", 2, 0.002),
                ],
            }},
            "couplings": {"summary": {"coupling_correlation": 0.98, "attention_correlation": 0.99,
                                      "value_correlation": 0.97}},
            "theory": {"summary": {"n_points": 15, "n_agree": 15, "max_relative_deviation": 0.05,
                                   "all_converged": True}},
            "equivalence": {"summary": {"max_rel_difference": 2e-16, "tolerance": 1e-10, "checks": [{}] * 8}},
            "scaling": {"summary": {"models": [_scaling_model(excess, [0.1 * e for e in excess], sizes)]}},
        }
    }  # fmt: skip


def verdicts(doc: dict[str, Any]) -> dict[str, str]:
    return {c.id: c.verdict for c in evaluate_claims(doc)}


def test_all_reproduced_and_evidence_paths_exist() -> None:
    doc = fabricated()
    claims = evaluate_claims(doc)
    assert {c.id: c.verdict for c in claims} == dict.fromkeys("abcdef", "reproduced")
    wrapped = {"claims": [c.as_dict() for c in claims], **doc}
    for c in claims:
        assert c.verdict in VERDICTS and c.rule and c.reason
        for e in c.evidence:
            if e.key:  # every number names where it came from in the document
                assert get_path(wrapped, e.key) == e.value
            if e.stderr_key:
                assert get_path(wrapped, e.stderr_key) == e.stderr
    assert "2 layers are needed" in next(c for c in claims if c.id == "d").reason


def test_missing_stages_are_not_run() -> None:
    assert set(verdicts({"stages": {}}).values()) == {"not run"}


def test_conditionals_flip() -> None:
    doc = fabricated()
    del doc["stages"]["scaling"]  # without learning curves: judged on the depth study's M
    fac = doc["stages"]["depth"]["summary"]["models"][0]
    fac["excess_loss"] = 2.0 * EXCESS_REL_TOL * 2.0  # twice the tolerance of the optimal loss 2.0
    assert verdicts(doc)["a"] == "not reproduced"
    fac["excess_loss"] = EXCESS_REL_TOL * 2.0  # on the threshold: the error bar straddles it
    assert verdicts(doc)["a"] == "inconclusive"
    fac["excess_loss"] = 0.001
    doc["stages"]["couplings"]["summary"]["coupling_correlation"] = COUPLING_R_MIN - 0.01
    assert verdicts(doc)["a"] == "not reproduced"
    doc = fabricated()
    doc["stages"]["depth"]["summary"]["models"][0]["converged"] = False
    assert verdicts(doc)["a"] == "inconclusive"


def test_conditionals_use_the_largest_sample_size() -> None:
    """With learning curves, the factored layer is judged where it had the most data."""
    doc = fabricated()
    doc["stages"]["depth"]["summary"]["models"][0]["excess_loss"] = 0.1  # 5%: small-M excess
    claim = next(c for c in evaluate_claims(doc) if c.id == "a")
    assert claim.verdict == "reproduced" and "M = 10000" in claim.reason
    last = doc["stages"]["scaling"]["summary"]["models"][0]["points"][-1]
    last["excess_loss"], last["excess_loss_stderr"] = 0.1, 0.001
    assert verdicts(doc)["a"] == "not reproduced"


def test_equivalence_flips() -> None:
    doc = fabricated()
    doc["stages"]["equivalence"]["summary"]["max_rel_difference"] = 1e-6
    assert verdicts(doc)["b"] == "not reproduced"


def test_theory_flips_at_the_binomial_quantile() -> None:
    doc = fabricated()
    th = doc["stages"]["theory"]["summary"]
    allowed = binomial_quantile(15, 0.05)
    th["n_agree"] = 15 - allowed
    assert verdicts(doc)["c"] == "reproduced"
    th["n_agree"] = 15 - allowed - 1
    assert verdicts(doc)["c"] == "not reproduced"
    th["all_converged"] = False
    assert verdicts(doc)["c"] == "inconclusive"


def test_binomial_quantile() -> None:
    assert binomial_quantile(15, 0.05) == 3  # P(X <= 2) = 0.964, P(X <= 3) = 0.995
    assert binomial_quantile(1, 0.05) == 1
    assert binomial_quantile(100, 0.0) == 0


def test_depth_flips() -> None:
    doc = fabricated()
    models = doc["stages"]["depth"]["summary"]["models"]
    models[1]["relative_gap_to_factored"] = 0.002  # one layer already matches
    assert verdicts(doc)["d"] == "not reproduced"
    models[1]["relative_gap_to_factored"] = 0.01 + Z * 0.001 * 0.5  # within 2 s.e. of the tolerance
    assert verdicts(doc)["d"] == "inconclusive"
    models[1]["relative_gap_to_factored"] = 0.05
    models[2]["relative_gap_to_factored"] = 0.03  # no depth matches
    claim = next(c for c in evaluate_claims(doc) if c.id == "d")
    assert claim.verdict == "inconclusive" and "no tested depth" in claim.reason
    doc = fabricated()
    doc["stages"]["depth"]["summary"]["models"][2]["converged"] = False  # still learning at the cap
    claim = next(c for c in evaluate_claims(doc) if c.id == "d")
    assert claim.verdict == "inconclusive" and "early stopping" in claim.reason
    doc = fabricated()
    doc["stages"]["depth"]["summary"]["models"][1]["relative_gap_stderr"] = 0.05  # error bars overlap
    assert verdicts(doc)["d"] == "inconclusive"


def test_scaling_flips() -> None:
    sizes = [300, 1000, 3000, 10000]
    doc = fabricated()
    sc = doc["stages"]["scaling"]["summary"]
    floor = [0.1, 0.04, 0.02, 0.02]  # levels off: the last segment is flat
    sc["models"] = [_scaling_model(floor, [0.001] * 4, sizes)]
    assert verdicts(doc)["e"] == "not reproduced"
    noisy = [0.1, 0.03, 0.01, 0.004]
    sc["models"] = [_scaling_model(noisy, [0.05, 0.02, 0.005, 0.0015], sizes)]  # large error bars
    assert verdicts(doc)["e"] == "inconclusive"
    sc["models"] = [_scaling_model([0.1, 0.03], [0.001, 0.001], sizes[:2])]
    claim = next(c for c in evaluate_claims(doc) if c.id == "e")
    assert claim.verdict == "inconclusive" and "fewer than 3" in claim.reason
    doc = fabricated()
    doc["stages"]["scaling"]["summary"]["models"][0]["points"][1]["n_early_stopped"] = 2
    assert verdicts(doc)["e"] == "inconclusive"
    # the last excess consistent with zero also counts as reaching zero
    doc = fabricated()
    m = _scaling_model([0.1, 0.03, 0.01, 0.0002], [0.005, 0.002, 0.001, 0.0005], sizes)
    doc["stages"]["scaling"]["summary"]["models"] = [m]
    assert verdicts(doc)["e"] == "reproduced"


def test_factors_flip() -> None:
    doc = fabricated()
    doc["stages"]["couplings"]["summary"]["value_correlation"] = COUPLING_R_MIN - 0.1
    assert verdicts(doc)["f"] == "not reproduced"


def test_evaluate_claims_is_pure() -> None:
    doc = fabricated()
    before = copy.deepcopy(doc)
    first = [c.as_dict() for c in evaluate_claims(doc)]
    assert doc == before
    assert [c.as_dict() for c in evaluate_claims(doc)] == first


@pytest.mark.parametrize("bad", [{"stages": {"depth": {"summary": {}}}}])
def test_malformed_documents_raise(bad: dict[str, Any]) -> None:
    with pytest.raises(KeyError):
        evaluate_claims(bad)
