"""Models: the exact mapping to Potts conditionals, gradients, leakage, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnpotts.errors import ShapeError, ValidationError
from attnpotts.inference import (
    attention_from_potts,
    full_potts_from_conditional,
    masked_cross_entropy,
    mlm_loss,
    site_conditional_logits,
    to_conditional_potts,
    to_potts_model,
)
from attnpotts.models import (
    FactoredAttention,
    FullPotts,
    TransformerEncoder,
    build_model,
    check_tokens,
    model_kind,
)
from attnpotts.models.base import one_hot_states
from attnpotts.potts import ConditionalPotts, PottsModel

L, Q = 6, 4
F64 = torch.float64


def _randomise(model: torch.nn.Module, seed: int, scale: float = 0.8) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=F64) * scale)


def _states(m: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, Q, size=(m, L))


FACTORED = [
    {"variant": "free", "fields": True},
    {"variant": "free", "fields": False},
    {"variant": "softmax", "fields": True},
    {"variant": "softmax", "fields": False},
    {"variant": "free", "fields": True, "value_rank": 2},
    {"variant": "softmax", "fields": False, "value_rank": 3, "key_dim": 3},
]


def _all_models() -> list[torch.nn.Module]:
    models: list[torch.nn.Module] = [
        FactoredAttention(L, Q, 3, dtype=F64, **kw)
        for kw in FACTORED  # type: ignore[arg-type]
    ]
    models += [
        FullPotts(L, Q, dtype=F64),
        FullPotts(L, Q, symmetric=True, fields=False, dtype=F64),
        TransformerEncoder(L, Q, n_layers=2, n_heads=2, width=8, dtype=F64),
    ]
    for k, m in enumerate(models):
        _randomise(m, k)
    return models


@pytest.mark.parametrize("kw", FACTORED, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_mlm_loss_equals_pseudo_likelihood_of_mapped_potts(kw: dict) -> None:
    model = FactoredAttention(L, Q, 3, dtype=F64, **kw)
    _randomise(model, 7)
    states = _states(200)
    potts = to_conditional_potts(model)
    assert potts.beta == 1.0
    mlm = mlm_loss(model, states)
    pll = potts.pseudo_log_likelihood(states)
    assert mlm == pytest.approx(-pll / (200 * L), rel=1e-10, abs=0)
    # and the logits themselves are the Potts conditional logits
    tokens = torch.as_tensor(states)
    with torch.no_grad():
        np.testing.assert_allclose(
            model(tokens).numpy(), potts.conditional_logits(states), rtol=1e-12, atol=1e-12
        )


def test_softmax_attention_rows_are_distributions_with_zero_diagonal() -> None:
    model = FactoredAttention(L, Q, 2, variant="softmax", dtype=F64)
    _randomise(model, 3)
    A = model.attention_matrices().detach()
    assert torch.all(torch.diagonal(A, dim1=1, dim2=2) == 0)
    torch.testing.assert_close(A.sum(-1), torch.ones(2, L, dtype=F64))


def test_weighted_mlm_loss_equals_weighted_pll() -> None:
    model = FactoredAttention(L, Q, 2, dtype=F64)
    _randomise(model, 11)
    states = _states(50, seed=3)
    w = np.random.default_rng(4).uniform(0, 2, 50)
    potts = to_conditional_potts(model)
    expected = -potts.pseudo_log_likelihood(states, w) / (w.sum() * L)
    assert mlm_loss(model, states, w) == pytest.approx(expected, rel=1e-10, abs=0)


def test_full_potts_roundtrip_through_conditional_potts() -> None:
    rng = np.random.default_rng(5)
    J = rng.normal(size=(L, L, Q, Q))
    J[np.arange(L), np.arange(L)] = 0
    cond = ConditionalPotts(rng.normal(size=(L, Q)), J, beta=1.7)
    model = full_potts_from_conditional(cond)
    back = to_conditional_potts(model)
    assert back.allclose(cond.absorb_beta(), rtol=1e-14, atol=1e-14)
    states = _states(30)
    with torch.no_grad():
        np.testing.assert_allclose(
            model(torch.as_tensor(states)).numpy(), cond.conditional_logits(states), rtol=1e-12
        )


def test_symmetric_full_potts_gives_a_symmetric_model() -> None:
    model = FullPotts(L, Q, symmetric=True, dtype=F64)
    _randomise(model, 2)
    assert to_conditional_potts(model).is_symmetric
    assert isinstance(to_potts_model(model), PottsModel)


def test_attention_from_factored_potts_has_its_conditionals() -> None:
    rng = np.random.default_rng(8)
    site = rng.normal(size=(2, L, L))
    site = site + site.transpose(0, 2, 1)
    site[:, np.arange(L), np.arange(L)] = 0
    colour = rng.normal(size=(2, Q, Q))
    colour = colour + colour.transpose(0, 2, 1)
    fields = rng.normal(size=(L, Q))
    true = PottsModel.from_factors(site, colour, fields=fields, beta=0.6)
    model = attention_from_potts(true)
    assert model.n_heads == 2 and model.variant == "free"
    states = _states(40)
    with torch.no_grad():
        np.testing.assert_allclose(
            model(torch.as_tensor(states)).numpy(), true.conditional_logits(states), rtol=1e-12
        )
    # and back: the symmetrised mapped model is the true model with beta absorbed
    assert to_potts_model(model).allclose(true.absorb_beta(), rtol=1e-12, atol=1e-12)


def test_attention_from_potts_rejects_unfactored_models_and_dropped_fields() -> None:
    J = np.zeros((L, L, Q, Q))
    with pytest.raises(ValidationError, match="from_factors"):
        attention_from_potts(PottsModel(None, J))
    site = np.ones((L, L)) - np.eye(L)
    true = PottsModel.from_factors(site, np.eye(Q), fields=np.ones((L, Q)))
    with pytest.raises(ValidationError, match="fields=True"):
        attention_from_potts(true, fields=False)


def test_transformer_has_no_potts_mapping() -> None:
    with pytest.raises(ValidationError, match="only FactoredAttention and FullPotts"):
        to_conditional_potts(TransformerEncoder(L, Q, width=8, n_heads=2))


@pytest.mark.parametrize("index", range(9))
def test_gradients_match_finite_differences(index: int) -> None:
    model = _all_models()[index]
    tokens = torch.as_tensor(_states(3, seed=index))
    tokens[0, 1] = Q  # a [MASK] token in the input
    params = list(model.parameters())
    names = [n for n, _ in model.named_parameters()]
    target = torch.as_tensor(_states(3, seed=100 + index))

    def loss(*flat: torch.Tensor) -> torch.Tensor:
        state = dict(zip(names, flat, strict=True))
        logits = torch.func.functional_call(model, state, (tokens,))
        return torch.nn.functional.cross_entropy(logits.reshape(-1, Q), target.reshape(-1))

    inputs = tuple(p.detach().clone().requires_grad_(True) for p in params)
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("index", range(9))
def test_no_leakage_of_a_sites_own_token(index: int) -> None:
    model = _all_models()[index]
    model.eval()
    tokens = torch.as_tensor(_states(5, seed=index))
    with torch.no_grad():
        base = site_conditional_logits(model, tokens)
        for i in range(L):
            for a in range(Q):
                changed = tokens.clone()
                changed[:, i] = a
                out = site_conditional_logits(model, changed)
                torch.testing.assert_close(out[:, i], base[:, i], rtol=0, atol=0)
        if model.structural:  # one unmasked pass is the same thing
            torch.testing.assert_close(model(tokens), base, rtol=0, atol=0)


def test_site_logits_change_with_other_sites() -> None:
    """The leakage test is not vacuous: changing s_j (j != i) does change the logits at i."""
    for model in _all_models():
        tokens = torch.as_tensor(_states(4))
        with torch.no_grad():
            base = site_conditional_logits(model.eval(), tokens)
            changed = tokens.clone()
            changed[:, 0] = (changed[:, 0] + 1) % Q
            out = site_conditional_logits(model, changed)
        assert not torch.allclose(out[:, 1:], base[:, 1:])


@pytest.mark.parametrize("kind", ["factored", "potts"])
def test_mask_token_contributes_nothing_in_structural_models(kind: str) -> None:
    model = build_model(kind, n_sites=L, n_states=Q, dtype=F64)
    _randomise(model, 1)
    tokens = torch.as_tensor(_states(4))
    masked = tokens.clone()
    masked[:, 2] = Q
    potts = to_conditional_potts(model)
    J = np.array(potts.couplings)
    J[:, 2] = 0.0  # site 2 masked: it is nobody's neighbour
    expected = ConditionalPotts(potts.fields, J).conditional_logits(tokens.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(model(masked).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_build_model_and_kind_roundtrip() -> None:
    for kind in ("factored", "potts", "transformer"):
        m = build_model(kind, n_sites=L, n_states=Q)
        assert model_kind(m) == kind
        again = build_model(kind, **m.hyperparameters())
        assert again.hyperparameters() == m.hyperparameters()
    with pytest.raises(ValidationError, match="unknown model kind"):
        build_model("lstm", n_sites=L, n_states=Q)
    with pytest.raises(ValidationError, match="bad arguments"):
        build_model("potts", n_sites=L, n_states=Q, n_layers=3)


def test_same_seed_same_initialisation() -> None:
    a = TransformerEncoder(L, Q, width=8, n_heads=2, seed=3)
    b = TransformerEncoder(L, Q, width=8, n_heads=2, seed=3)
    c = TransformerEncoder(L, Q, width=8, n_heads=2, seed=4)
    for (_, p), (_, r), (_, _s) in zip(
        a.named_parameters(), b.named_parameters(), c.named_parameters(), strict=True
    ):
        assert torch.equal(p, r)
    assert not all(torch.equal(p, s) for p, s in zip(a.parameters(), c.parameters(), strict=True))


def test_float32_default_and_float64_option() -> None:
    assert FactoredAttention(L, Q).value.dtype == torch.float32  # type: ignore[union-attr]
    assert FullPotts(L, Q, dtype=F64).couplings.dtype == F64


@pytest.mark.parametrize(
    ("tokens", "error", "match"),
    [
        (torch.full((2, L), Q + 1), ValidationError, "must lie in"),
        (torch.full((2, L), -1), ValidationError, "must lie in"),
        (torch.zeros(2, L + 1, dtype=torch.long), ShapeError, "length 7"),
        (torch.zeros(L, dtype=torch.long), ShapeError, r"shape \(B, L\)"),
        (torch.zeros(2, L), ValidationError, "integers"),
        (np.zeros((2, L), dtype=int), ValidationError, "torch integer tensor"),
    ],
)
def test_bad_tokens_give_clear_errors(tokens: object, error: type, match: str) -> None:
    for model in _all_models():
        with pytest.raises(error, match=match):
            model(tokens)


def test_mask_token_not_allowed_where_states_are_expected() -> None:
    with pytest.raises(ValidationError, match=r"0\.\.3"):
        check_tokens(torch.full((1, L), Q), L, Q, allow_mask=False)
    with pytest.raises(ValidationError, match=r"0\.\.3"):
        mlm_loss(FullPotts(L, Q), np.full((2, L), Q))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"variant": "cosine"}, "variant"),
        ({"n_heads": 0}, "n_heads"),
        ({"value_rank": 0}, "value_rank"),
        ({"init_std": -1.0}, "init_std"),
    ],
)
def test_bad_factored_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        FactoredAttention(L, Q, **kwargs)


def test_bad_transformer_and_size_arguments() -> None:
    with pytest.raises(ValidationError, match="multiple of n_heads"):
        TransformerEncoder(L, Q, width=10, n_heads=4)
    with pytest.raises(ValidationError, match="dropout"):
        TransformerEncoder(L, Q, dropout=1.0)
    with pytest.raises(ValidationError, match="n_layers"):
        TransformerEncoder(L, Q, n_layers=0)
    with pytest.raises(ValidationError, match="n_states"):
        FullPotts(L, 1)
    with pytest.raises(ValidationError, match="n_sites"):
        FullPotts(1, Q)


def test_transformer_dropout_uses_only_the_given_generator() -> None:
    model = TransformerEncoder(L, Q, width=8, n_heads=2, dropout=0.5, dtype=F64)
    tokens = torch.as_tensor(_states(3))
    model.train()
    a = model(tokens, generator=torch.Generator().manual_seed(1))
    b = model(tokens, generator=torch.Generator().manual_seed(1))
    c = model(tokens, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    model.eval()
    torch.testing.assert_close(
        model(tokens, generator=torch.Generator().manual_seed(1)), model(tokens), rtol=0, atol=0
    )


@pytest.mark.gpu
def test_models_run_on_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    tokens = torch.as_tensor(_states(4)).cuda()
    for kind in ("factored", "potts", "transformer"):
        m = build_model(kind, n_sites=L, n_states=Q, device="cuda")
        cpu = build_model(kind, n_sites=L, n_states=Q)
        torch.testing.assert_close(m(tokens).cpu(), cpu(tokens.cpu()), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", ["softmax", "free"])
def test_symmetric_factored_model_is_a_potts_model_on_every_path(variant: str) -> None:
    """``symmetric=True``: ``J[i, j, a, b] = J[j, i, b, a]``, and the blocked, dense and per-sequence
    logits, the fused loss and the conditionals of the tensor all agree (float64)."""
    m = FactoredAttention(L, Q, 3, variant=variant, key_dim=2, init_std=1.0, seed=5, dtype=F64,
                          symmetric=True)
    _randomise(m, 6)
    J = m.coupling_tensor().detach().numpy()
    np.testing.assert_allclose(J, J.transpose(1, 0, 3, 2), atol=1e-15)
    asym = FactoredAttention(L, Q, 3, variant=variant, key_dim=2, dtype=F64)
    asym.load_state_dict(m.state_dict())
    J0 = asym.coupling_tensor().detach().numpy()
    np.testing.assert_allclose(J, 0.5 * (J0 + J0.transpose(1, 0, 3, 2)), atol=1e-15)
    tokens = torch.as_tensor(_states(2 * Q))
    expected = ConditionalPotts(m.fields.detach().numpy(), J).conditional_logits(tokens.numpy())  # type: ignore[union-attr]
    with torch.no_grad():
        for kernel in ("auto", "dense"):
            m.kernel = kernel
            np.testing.assert_allclose(m(tokens).numpy(), expected, atol=1e-12)  # >= q sequences: J
            np.testing.assert_allclose(m(tokens[:2]).numpy(), expected[:2], atol=1e-12)  # per sequence
        m.kernel = "auto"
        w = torch.rand(tokens.shape[0], generator=torch.Generator().manual_seed(1), dtype=F64)
        fused = m.cross_entropy_sum(tokens, w)
        assert fused is not None
        plain = masked_cross_entropy(m(tokens), tokens, None, w, reduction="sum")
        assert float(fused) == pytest.approx(float(plain), rel=1e-12)
    assert m.hyperparameters()["symmetric"] is True
    assert "symmetric" not in asym.hyperparameters()  # checkpoints from before the option still match
    assert build_model("factored", **m.hyperparameters()).symmetric  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="symmetric"):
        FactoredAttention(L, Q, symmetric="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_one_hot_states_matches_the_definition_and_zeroes_the_mask(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, Q + 1, (9, L), generator=gen)  # Q is [MASK]
    want = torch.zeros(9, L, Q, dtype=torch.float64)
    for n in range(9):
        for i in range(L):
            if int(tokens[n, i]) < Q:
                want[n, i, int(tokens[n, i])] = 1.0
    got = one_hot_states(tokens.int(), Q, dtype)
    assert got.dtype == dtype and got.is_contiguous()
    assert torch.equal(got.double(), want)
    buffer = torch.full((9, L, Q), 7.0, dtype=dtype)  # stale contents are overwritten
    assert one_hot_states(tokens, Q, dtype, out=buffer).data_ptr() == buffer.data_ptr()
    assert torch.equal(buffer.double(), want)


def test_check_tokens_reads_the_range_and_names_what_is_wrong() -> None:
    ok = torch.randint(0, Q, (3, L), generator=torch.Generator().manual_seed(4))
    check_tokens(ok, L, Q, allow_mask=False)
    check_tokens(torch.full((3, L), Q), L, Q)  # all [MASK] is a valid input
    check_tokens(torch.zeros((0, L), dtype=torch.long), L, Q, allow_mask=False)
    with pytest.raises(ValidationError, match=r"\[MASK\] token 4 where states 0\.\.3"):
        check_tokens(torch.cat([ok, torch.full((1, L), Q)]), L, Q, allow_mask=False)
    with pytest.raises(ValidationError, match=r"must lie in 0\.\.3 for q = 4, got values in 0\.\.5"):
        check_tokens(torch.cat([ok, torch.full((1, L), Q + 1)]), L, Q, allow_mask=False)
    with pytest.raises(ValidationError, match=r"or 4 \(\[MASK\]\) for q = 4, got values in -2\.\."):
        check_tokens(ok - 2, L, Q)
