"""L2 regularisation conventions of the DCA tools, named and convertible.

Every tool penalises ``||h||^2`` and ``||J||^2`` but on differently normalised objectives and with
differently scaled coefficients, so "lambda_J = 0.01" means different things in each. attnpotts
converts each convention to one *canonical* form, the summed weighted objective of plmc

    F = - sum_n w_n sum_i log P(s_i^n | s_rest^n) + lam_pair * sum_{i<j} ||J_ij||^2 + lam_h * ||h||^2

(each unordered pair penalised once, no factor 1/2), and from there to the per-token
coefficients of the training loop (:class:`attnpotts.training.TrainingConfig`), whose objective is
``F_data / (W L) + (coupling_l2 / 2) ||J||^2 + (field_l2 / 2) ||h||^2`` with ``||J||^2`` over the
full ``(L, L, q, q)`` tensor (both orders of every pair) and ``W = N_eff = sum_n w_n``:
``coupling_l2 = lam_pair / (W L)`` and ``field_l2 = 2 lam_h / (W L)``.

Conventions (:data:`CONVENTIONS`), ``L`` sites and ``q`` states:

* ``"plmc"``: ``lam_pair = lambda_j``, ``lam_h = lambda_h`` as given (plmc's ``-le`` / ``-lh``;
  its built-in defaults 100 and 0.01).
* ``"evcouplings"`` (= ``"gremlin"``): ``lam_pair = lambda_j (L - 1)(q - 1)``,
  ``lam_h = lambda_h`` (EVcouplings' ``lambda_J_times_Lq``; GREMLIN's ``lam_w``); defaults 0.01 and
  0.01, the plmc settings of the README's DCA benchmark (attnpotts' estimators have their own
  defaults in this convention, :mod:`attnpotts.dca.defaults`).
* ``"ccmpred"``: ``lam_pair = lambda_j (L - 1)`` (CCMpred's ``-l LFACTOR``, default 0.2) and
  ``lam_h = lambda_h`` (default 0.01); CCMpred writes ``lambda_pair / 2 * sum_{i, j}`` over both
  orders, which is the same ``sum_{i<j}``.
* ``"plmdca-jl"``: the *mean* form of PlmDCA.jl, ``-(1/W) sum_n w_n log P_i + lambda_j
  sum_{j != i} ||J_ij||^2 + lambda_h ||h_i||^2`` per site, summed over sites: every ordered pair
  once, i.e. ``lam_pair = 2 W lambda_j`` and ``lam_h = W lambda_h`` (defaults 0.01, 0.01).
* ``"attnpotts"``: ``lambda_j``, ``lambda_h`` are the training loop's ``coupling_l2`` and
  ``field_l2`` themselves.

Conversions depending on ``N_eff`` (``plmdca-jl``, ``attnpotts``) need it; the others only ``L``
and ``q``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..errors import ValidationError

__all__ = ["CONVENTIONS", "DEFAULT_REGULARIZATION", "Regularization"]

Convention = Literal["plmc", "evcouplings", "gremlin", "ccmpred", "plmdca-jl", "attnpotts"]
#: Names accepted as ``convention``.
CONVENTIONS: tuple[str, ...] = ("plmc", "evcouplings", "gremlin", "ccmpred", "plmdca-jl", "attnpotts")

#: The tools' own defaults ``(lambda_j, lambda_h)`` in their conventions (plmc's are built into
#: its source, ``-le 100 -lh 0.01``; EVcouplings runs it with ``0.01 (L-1)(q-1)`` instead).
_DEFAULTS: dict[str, tuple[float, float]] = {
    "plmc": (100.0, 0.01),
    "evcouplings": (0.01, 0.01),
    "gremlin": (0.01, 0.01),
    "ccmpred": (0.2, 0.01),
    "plmdca-jl": (0.01, 0.01),
}


@dataclass(frozen=True)
class Regularization:
    """An L2 regularisation in a named convention (see the module docstring).

    Attributes:
        convention: one of :data:`CONVENTIONS`.
        lambda_j: coupling coefficient as that convention states it.
        lambda_h: field coefficient as that convention states it.
    """

    convention: Convention = "evcouplings"
    lambda_j: float = 0.01
    lambda_h: float = 0.01

    def __post_init__(self) -> None:
        if self.convention not in CONVENTIONS:
            raise ValidationError(
                f"unknown regularisation convention {self.convention!r}; choose one of {CONVENTIONS}"
            )
        for name in ("lambda_j", "lambda_h"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValidationError(f"{name} must be a finite number >= 0, got {v!r}")

    @classmethod
    def default(cls, convention: str) -> Regularization:
        """The tool's own default coefficients in ``convention`` (none for ``"attnpotts"``)."""
        if convention not in _DEFAULTS:
            raise ValidationError(
                f"convention {convention!r} has no default; give lambda_j and lambda_h "
                f"explicitly (--lambda-j, --lambda-h; defaults exist for {sorted(_DEFAULTS)})"
            )
        lj, lh = _DEFAULTS[convention]
        return cls(convention, lj, lh)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ conversions
    def canonical(self, n_sites: int, n_states: int, n_eff: float | None = None) -> tuple[float, float]:
        """``(lam_pair, lam_h)`` of the summed plmc form (each unordered pair penalised once)."""
        L, q = _check_sizes(n_sites, n_states)
        c = self.convention
        if c == "plmc":
            return float(self.lambda_j), float(self.lambda_h)
        if c in ("evcouplings", "gremlin"):
            return float(self.lambda_j) * (L - 1) * (q - 1), float(self.lambda_h)
        if c == "ccmpred":
            return float(self.lambda_j) * (L - 1), float(self.lambda_h)
        W = _need_neff(n_eff, c)
        if c == "plmdca-jl":
            return 2.0 * W * float(self.lambda_j), W * float(self.lambda_h)
        # attnpotts: per-token coefficients of the training loop
        return float(self.lambda_j) * W * L, float(self.lambda_h) * W * L / 2.0

    def per_token(self, n_sites: int, n_states: int, n_eff: float) -> tuple[float, float]:
        """``(coupling_l2, field_l2)`` for :class:`~attnpotts.training.TrainingConfig`."""
        L, _ = _check_sizes(n_sites, n_states)
        W = _need_neff(n_eff, self.convention)
        lam_pair, lam_h = self.canonical(n_sites, n_states, n_eff)
        return lam_pair / (W * L), 2.0 * lam_h / (W * L)

    def convert(
        self, convention: str, n_sites: int, n_states: int, n_eff: float | None = None
    ) -> Regularization:
        """The same penalty expressed in another ``convention`` (for the same ``L``, ``q``, ``N_eff``)."""
        if convention not in CONVENTIONS:
            raise ValidationError(f"unknown convention {convention!r}; choose one of {CONVENTIONS}")
        L, q = _check_sizes(n_sites, n_states)
        lam_pair, lam_h = self.canonical(L, q, n_eff)
        if convention == "plmc":
            lj, lh = lam_pair, lam_h
        elif convention in ("evcouplings", "gremlin"):
            lj, lh = lam_pair / ((L - 1) * (q - 1)), lam_h
        elif convention == "ccmpred":
            lj, lh = lam_pair / (L - 1), lam_h
        else:
            W = _need_neff(n_eff, convention)
            if convention == "plmdca-jl":
                lj, lh = lam_pair / (2.0 * W), lam_h / W
            else:
                lj, lh = lam_pair / (W * L), 2.0 * lam_h / (W * L)
        return Regularization(convention, lj, lh)  # type: ignore[arg-type]

    def describe(self, n_sites: int, n_states: int, n_eff: float) -> dict[str, Any]:
        """JSON record: the convention as given, its canonical and per-token forms, all conventions."""
        lam_pair, lam_h = self.canonical(n_sites, n_states, n_eff)
        cl2, fl2 = self.per_token(n_sites, n_states, n_eff)
        return {
            "given": asdict(self),
            "canonical_plmc_form": {"lambda_pair": lam_pair, "lambda_h": lam_h},
            "training_loop": {"coupling_l2": cl2, "field_l2": fl2},
            "equivalent": {
                c: asdict(self.convert(c, n_sites, n_states, n_eff)) for c in CONVENTIONS if c != "gremlin"
            },
            "objective": "sum_n w_n sum_i -log P(s_i|rest) + lambda_pair sum_{i<j} ||J_ij||^2 "
            "+ lambda_h ||h||^2 (canonical form)",
        }


#: EVcouplings/GREMLIN's documented lambda_J = 0.01 (L-1)(q-1), lambda_h = 0.01 (the convention's
#: own setting, for comparisons with those tools); the estimators' defaults are their own: the full
#: model's (``attnpotts.dca.PLM_REGULARIZATION``) has twice its lambda_J, factored attention's
#: (``attnpotts.dca.FACTORED_REGULARIZATION``) a third of it.
DEFAULT_REGULARIZATION = Regularization("evcouplings", 0.01, 0.01)


def _check_sizes(n_sites: int, n_states: int) -> tuple[int, int]:
    L, q = int(n_sites), int(n_states)
    if L < 2 or q < 2:
        raise ValidationError(f"need n_sites >= 2 and n_states >= 2, got L={n_sites}, q={n_states}")
    return L, q


def _need_neff(n_eff: float | None, convention: str) -> float:
    if n_eff is None or not (math.isfinite(n_eff) and n_eff > 0):
        raise ValidationError(
            f"converting the {convention!r} convention needs the effective number of sequences "
            f"n_eff > 0, got {n_eff!r}"
        )
    return float(n_eff)
