"""Single-site MCMC samplers (heat-bath Gibbs, Metropolis) and parallel tempering.

Many independent chains are advanced together by the numba kernels of :mod:`.kernels`; the
explicit :class:`~.state.SamplerState` makes every run resumable and deterministic for a seed.

A *sweep* is ``L`` site updates per chain: sites ``0..L-1`` in order (``sweep="sequential"``) or
``L`` sites drawn uniformly with replacement (``sweep="random"``, which satisfies detailed balance).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numba
import numpy as np

from ..errors import ShapeError, ValidationError
from ..potts import PottsModel
from ..random import SeedLike, as_seed_sequence
from . import kernels
from .state import SamplerState

__all__ = ["MCMCRun", "MCMCSampler", "ParallelTempering", "Rule", "SweepOrder"]

log = logging.getLogger(__name__)

Rule = Literal["gibbs", "metropolis"]
SweepOrder = Literal["sequential", "random"]
_RULES = {"gibbs": kernels.GIBBS, "metropolis": kernels.METROPOLIS}
#: Largest block of uniforms drawn at once (doubles); bounds memory, does not change results.
_MAX_BLOCK = 2**22
#: Chains from which loop="auto" uses the site-major loop (couplings of one site shared in cache
#: by a block of chains); it was as fast or faster from L = 20 on in benchmarks/bench_gibbs.py.
_SITE_MAJOR_MIN_CHAINS = 64
#: Largest block of chains that update a site together (loop="site").
_MAX_SITE_BLOCK = 1024

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True, eq=False)
class MCMCRun:
    """Result of :meth:`MCMCSampler.run`.

    Attributes:
        state: final state (pass to ``run(state=...)`` to continue).
        samples: ``(n_kept, C, L)`` int8 configurations kept after burn-in and thinning.
        sample_sweeps: ``(n_kept,)`` global sweep number (1-based) of each kept sample.
        energy_trace: ``(n_sweeps, C)`` float64 energy after each sweep of this run (burn-in included).
        trace_sweeps: ``(n_sweeps,)`` global sweep number of each row of ``energy_trace``.
        burn_in: sweeps of this run discarded before keeping samples.
    """

    state: SamplerState
    samples: np.ndarray
    sample_sweeps: np.ndarray
    energy_trace: np.ndarray
    trace_sweeps: np.ndarray
    burn_in: int


@dataclass(frozen=True, eq=False)
class PTRun:
    """Result of :meth:`ParallelTempering.run`; arrays are ordered by temperature.

    Attributes:
        state: final state.
        samples: ``(n_kept, T, R, L)`` int8, configuration at temperature ``k`` of replica set ``r``.
        sample_sweeps: ``(n_kept,)`` global sweep number of each kept sample.
        energy_trace: ``(n_sweeps, T, R)`` energy at each temperature after each sweep.
        trace_sweeps: ``(n_sweeps,)`` global sweep numbers.
        burn_in: sweeps of this run discarded before keeping samples.
    """

    state: SamplerState
    samples: np.ndarray
    sample_sweeps: np.ndarray
    energy_trace: np.ndarray
    trace_sweeps: np.ndarray
    burn_in: int


def _generator(state: dict[str, Any]) -> np.random.Generator:
    bg = np.random.PCG64()
    bg.state = state  # type: ignore[assignment]
    return np.random.Generator(bg)


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValidationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class MCMCSampler:
    """Single-site Gibbs or Metropolis sampler of a :class:`~attnpotts.potts.PottsModel`.

    Args:
        model: the symmetric Potts model; sampled at ``model.beta`` unless a state says otherwise.
        rule: ``"gibbs"`` (heat-bath: draw the colour from its conditional) or ``"metropolis"``
            (propose a uniformly random other colour, accept with ``min(1, P(new)/P(old))``).
        sweep: ``"sequential"`` (sites ``0..L-1``) or ``"random"`` (``L`` uniform random sites).
        dtype: ``"float64"`` (default; exact tests) or ``"float32"`` (faster for large ``L``) for the
            couplings read by the kernel; energies are always accumulated in float64.
        loop: order of the kernel loops (same results): ``"chain"`` (each thread runs whole
            chains), ``"site"`` (blocks of chains update one site together, sharing its couplings
            in cache) or ``"auto"`` (``"site"`` from 64 chains).
    """

    def __init__(
        self,
        model: PottsModel,
        *,
        rule: Rule = "gibbs",
        sweep: SweepOrder = "sequential",
        dtype: str = "float64",
        loop: Literal["auto", "chain", "site"] = "auto",
    ) -> None:
        if not isinstance(model, PottsModel):
            raise ValidationError(
                "samplers need a symmetric PottsModel (energies); convert a ConditionalPotts with "
                ".symmetrized()"
            )
        if rule not in _RULES:
            raise ValidationError(f"rule must be 'gibbs' or 'metropolis', got {rule!r}")
        if sweep not in ("sequential", "random"):
            raise ValidationError(f"sweep must be 'sequential' or 'random', got {sweep!r}")
        if dtype not in ("float64", "float32"):
            raise ValidationError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        if loop not in ("auto", "chain", "site"):
            raise ValidationError(f"loop must be 'auto', 'chain' or 'site', got {loop!r}")
        if model.n_states > 127:
            raise ValidationError(
                f"samplers store states as int8: q must be <= 127, got {model.n_states}"
            )
        self.model = model
        self.rule: Rule = rule
        self.sweep: SweepOrder = sweep
        self.dtype = dtype
        self.loop = loop
        # Jt[i, j, b, a] = J[i, j, a, b] (L, L, q, q_pad), zero-padded colours: the values added for
        # neighbour j in state b are contiguous and a whole number of vector chunks (fresh writable
        # C-contiguous arrays: numba compiles one specialisation per array flag set)
        self._Jt, self._h = kernels.coupling_layout(model.couplings, model.fields, dtype)
        self._k = kernels.n_uniforms_per_update(_RULES[rule], sweep == "random")

    @property
    def settings(self) -> dict[str, Any]:
        """The sampler's settings (for manifests)."""
        return {"rule": self.rule, "sweep": self.sweep, "dtype": self.dtype, "loop": self.loop}

    def _block_for(self, n_chains: int) -> int:
        """Chains per kernel block: 1 for ``loop="chain"``; for ``"site"`` the chains split
        evenly over the threads (at most ``_MAX_SITE_BLOCK`` per block)."""
        loop = self.loop
        if loop == "auto":
            loop = "site" if n_chains >= _SITE_MAJOR_MIN_CHAINS else "chain"
        if loop == "chain":
            return 1
        threads = numba.get_num_threads()
        return max(1, min(_MAX_SITE_BLOCK, -(-n_chains // threads)))

    def _initial_chains(
        self, n_chains: int, initial: np.ndarray | None, seed: np.random.SeedSequence
    ) -> np.ndarray:
        L, q = self.model.n_sites, self.model.n_states
        if initial is None:
            return (
                np.random.Generator(np.random.PCG64(seed))
                .integers(0, q, size=(n_chains, L))
                .astype(np.int8)
            )
        init = np.asarray(initial)
        if init.ndim == 1:
            init = np.broadcast_to(init, (n_chains, L))
        if init.shape != (n_chains, L):
            raise ShapeError(
                f"initial must be (L,) or (C, L) = ({n_chains}, {L}), got {init.shape}"
            )
        if not np.issubdtype(init.dtype, np.integer) or init.min() < 0 or init.max() >= q:
            raise ValidationError(f"initial states must be integers in 0..{q - 1}")
        return init.astype(np.int8)

    def init_state(
        self,
        n_chains: int,
        *,
        seed: SeedLike = None,
        initial: np.ndarray | None = None,
        betas: np.ndarray | float | None = None,
    ) -> SamplerState:
        """A fresh state of ``n_chains`` chains.

        Args:
            n_chains: number of independent chains ``C``.
            seed: seed of the initial configurations (uniformly random) and of the update stream.
            initial: ``(L,)`` or ``(C, L)`` starting configurations instead of random ones.
            betas: ``(C,)`` or scalar inverse temperatures (default ``model.beta``).
        """
        n_chains = _check_count("n_chains", n_chains, 1)
        init_seed, run_seed = as_seed_sequence(seed).spawn(2)
        chains = self._initial_chains(n_chains, initial, init_seed)
        b = (
            np.full(n_chains, self.model.beta)
            if betas is None
            else np.broadcast_to(np.asarray(betas, dtype=np.float64), (n_chains,))
        )
        if not np.all(np.isfinite(b)) or np.any(b < 0):
            raise ValidationError("betas must be finite and >= 0")
        return SamplerState(
            chains=chains,
            energies=np.asarray(self.model.energy(chains), dtype=np.float64),
            betas=b,
            rng_state=dict(np.random.PCG64(run_seed).state),
        )

    def _check_state(self, state: SamplerState) -> None:
        if not isinstance(state, SamplerState):
            raise ValidationError(f"state must be a SamplerState, got {type(state).__name__}")
        if state.n_sites != self.model.n_sites:
            raise ShapeError(f"state has L = {state.n_sites} sites, the model {self.model.n_sites}")
        if state.chains.size and state.chains.max() >= self.model.n_states:
            raise ValidationError(f"state has colours >= q = {self.model.n_states}")

    def _advance(
        self,
        chains: np.ndarray,
        energies: np.ndarray,
        n_changed: np.ndarray,
        betas: np.ndarray,
        gen: np.random.Generator,
        n_sweeps: int,
        keep: np.ndarray,
        samples: np.ndarray,
        trace: np.ndarray,
    ) -> None:
        """Run ``n_sweeps`` sweeps in blocks (in place); ``keep``/``trace`` are per sweep."""
        C, L = chains.shape
        sweeps_per_call = max(1, _MAX_BLOCK // (C * L * self._k))
        block = self._block_for(C)
        done = 0
        while done < n_sweeps:
            nb = min(sweeps_per_call, n_sweeps - done)
            uniforms = gen.random((nb, C, L, self._k))
            kernels.run_sweeps(
                chains, self._Jt, self._h, betas, uniforms, _RULES[self.rule],
                self.sweep == "random", energies, n_changed, trace[done : done + nb],
                keep[done : done + nb], samples, block=block,
            )  # fmt: skip
            done += nb

    def run(
        self,
        n_sweeps: int,
        state: SamplerState,
        *,
        burn_in: int = 0,
        thin: int = 1,
        progress: ProgressCallback | None = None,
    ) -> MCMCRun:
        """Advance all chains by ``n_sweeps`` sweeps (burn-in included) and collect samples.

        Samples are kept after each global sweep number ``n``
        (1-based, counted from the state's creation) with ``n > start + burn_in`` and
        ``n % thin == 0``, where ``start = state.n_sweeps``; so with ``burn_in = 0`` a run split
        into pieces keeps exactly the samples of one long run.

        Args:
            n_sweeps: sweeps to run (``>= 0``), burn-in included.
            state: where to start (from :meth:`init_state` or a previous run).
            burn_in: sweeps at the start of this run whose states are not kept.
            thin: keep every ``thin``-th sweep.
            progress: called with the number of sweeps done after each block.
        """
        n_sweeps = _check_count("n_sweeps", n_sweeps, 0)
        burn_in = _check_count("burn_in", burn_in, 0)
        thin = _check_count("thin", thin, 1)
        self._check_state(state)
        if state.ladder is not None:
            raise ValidationError(
                "this is a parallel-tempering state; run it with ParallelTempering"
            )
        chains = np.array(state.chains)
        energies = np.array(state.energies)
        n_changed = np.array(state.n_changed)
        betas = np.array(state.betas)
        gen = _generator(state.rng_state)
        start = state.n_sweeps
        sweeps = np.arange(start + 1, start + n_sweeps + 1, dtype=np.int64)
        kept = (sweeps > start + burn_in) & (sweeps % thin == 0)
        keep = np.where(kept, np.cumsum(kept) - 1, -1).astype(np.int64)
        samples = np.empty((int(kept.sum()), chains.shape[0], chains.shape[1]), dtype=np.int8)
        trace = np.empty((n_sweeps, chains.shape[0]), dtype=np.float64)
        step = max(1, _MAX_BLOCK // (chains.size * self._k))
        done = 0
        while done < n_sweeps:
            nb = min(step, n_sweeps - done)
            self._advance(
                chains, energies, n_changed, betas, gen, nb, keep[done : done + nb],
                samples, trace[done : done + nb],
            )  # fmt: skip
            done += nb
            if progress is not None:
                progress(done)
        new_state = state.replace(
            chains=chains,
            energies=energies,
            n_changed=n_changed,
            rng_state=dict(gen.bit_generator.state),
            n_sweeps=start + n_sweeps,
        )
        return MCMCRun(new_state, samples, sweeps[kept], trace, sweeps, burn_in)


class ParallelTempering:
    """Replica-exchange MCMC over an increasing ladder of inverse temperatures.

    ``R`` replica sets of ``T`` chains each (``C = R T`` chains, all advanced by one kernel that
    takes a per-chain beta). After every ``swap_interval`` sweeps, neighbouring temperatures
    ``(k, k+1)`` of each replica set exchange configurations with probability
    ``min(1, exp((beta_k - beta_{k+1}) (E_x - E_y)))`` (``x`` at ``k``, ``y`` at ``k+1``), even
    pairs on even rounds and odd pairs on odd rounds. Exchanges permute the betas of the chains
    (``state.permutation``), never copy configurations. Every temperature samples its own
    Boltzmann distribution; the largest beta is usually the target.

    Args:
        model: the model (its ``beta`` is ignored: the ladder sets the temperatures).
        betas: ``(T,)`` strictly increasing, non-negative inverse temperatures.
        rule, sweep, dtype, loop: as for :class:`MCMCSampler`.
        swap_interval: sweeps between two swap rounds.
    """

    def __init__(
        self,
        model: PottsModel,
        betas: np.ndarray,
        *,
        rule: Rule = "gibbs",
        sweep: SweepOrder = "sequential",
        dtype: str = "float64",
        loop: Literal["auto", "chain", "site"] = "auto",
        swap_interval: int = 1,
    ) -> None:
        ladder = np.asarray(betas, dtype=np.float64)
        if ladder.ndim != 1 or ladder.size < 2:
            raise ShapeError(
                f"betas must be a 1-d ladder of at least 2 temperatures, got shape {ladder.shape}"
            )
        if not np.all(np.isfinite(ladder)) or ladder[0] < 0 or np.any(np.diff(ladder) <= 0):
            raise ValidationError(
                f"betas must be finite, >= 0 and strictly increasing, got {ladder.tolist()}"
            )
        self.ladder = ladder
        self.swap_interval = _check_count("swap_interval", swap_interval, 1)
        self.sampler = MCMCSampler(model, rule=rule, sweep=sweep, dtype=dtype, loop=loop)
        self.model = model

    @property
    def settings(self) -> dict[str, Any]:
        """The sampler's settings (for manifests)."""
        return {
            **self.sampler.settings,
            "method": "parallel_tempering",
            "ladder": self.ladder.tolist(),
            "swap_interval": self.swap_interval,
        }

    def init_state(self, n_replicas: int, *, seed: SeedLike = None) -> SamplerState:
        """``n_replicas`` sets of ``T`` chains from uniformly random configurations."""
        R = _check_count("n_replicas", n_replicas, 1)
        T = self.ladder.size
        base_seed, swap_seed = as_seed_sequence(seed).spawn(2)
        perm = np.arange(R * T, dtype=np.int64).reshape(R, T)
        betas = np.empty(R * T)
        betas[perm] = self.ladder[None, :]
        base = self.sampler.init_state(R * T, seed=base_seed, betas=betas)
        return base.replace(
            ladder=self.ladder,
            permutation=perm,
            swap_rng_state=dict(np.random.PCG64(swap_seed).state),
        )

    def _swap_round(
        self,
        energies: np.ndarray,
        perm: np.ndarray,
        betas: np.ndarray,
        gen: np.random.Generator,
        round_index: int,
        attempts: np.ndarray,
        accepts: np.ndarray,
    ) -> None:
        R, T = perm.shape
        # drawn in full every round, so the stream does not depend on the parity
        u = gen.random((R, T - 1))
        for k in range(round_index % 2, T - 1, 2):
            x, y = perm[:, k], perm[:, k + 1]
            log_ratio = (self.ladder[k] - self.ladder[k + 1]) * (energies[x] - energies[y])
            ok = np.log(u[:, k]) < log_ratio
            attempts[k] += R
            accepts[k] += int(ok.sum())
            perm[ok, k], perm[ok, k + 1] = y[ok], x[ok]
        betas[perm] = self.ladder[None, :]

    def run(
        self,
        n_sweeps: int,
        state: SamplerState,
        *,
        burn_in: int = 0,
        thin: int = 1,
        progress: ProgressCallback | None = None,
    ) -> PTRun:
        """Run ``n_sweeps`` sweeps with swap rounds; keep samples as :meth:`MCMCSampler.run`.

        A swap round follows every global sweep number divisible by ``swap_interval``.
        """
        n_sweeps = _check_count("n_sweeps", n_sweeps, 0)
        burn_in = _check_count("burn_in", burn_in, 0)
        thin = _check_count("thin", thin, 1)
        self.sampler._check_state(state)
        if state.ladder is None or not np.array_equal(state.ladder, self.ladder):
            raise ValidationError("state was not made by this ParallelTempering (ladder differs)")
        perm = np.array(state.permutation)
        R, T = perm.shape
        chains = np.array(state.chains)
        energies = np.array(state.energies)
        n_changed = np.array(state.n_changed)
        betas = np.array(state.betas)
        attempts = np.array(state.swap_attempts)
        accepts = np.array(state.swap_accepts)
        gen = _generator(state.rng_state)
        swap_gen = _generator(state.swap_rng_state)  # type: ignore[arg-type]
        rounds = state.n_swap_rounds
        start = state.n_sweeps
        sweeps = np.arange(start + 1, start + n_sweeps + 1, dtype=np.int64)
        kept = (sweeps > start + burn_in) & (sweeps % thin == 0)
        n_kept = int(kept.sum())
        samples = np.empty((n_kept, T, R, chains.shape[1]), dtype=np.int8)
        trace = np.empty((n_sweeps, T, R), dtype=np.float64)
        done = 0
        n_out = 0
        while done < n_sweeps:
            now = start + done
            nb = min(self.swap_interval - now % self.swap_interval, n_sweeps - done)
            seg_kept = kept[done : done + nb]
            keep = np.where(seg_kept, np.cumsum(seg_kept) - 1, -1).astype(np.int64)
            seg_samples = np.empty((int(seg_kept.sum()), *chains.shape), dtype=np.int8)
            seg_trace = np.empty((nb, chains.shape[0]))
            self.sampler._advance(
                chains, energies, n_changed, betas, gen, nb, keep, seg_samples, seg_trace
            )
            # by temperature: column k of replica set r is chain perm[r, k]
            trace[done : done + nb] = seg_trace[:, perm.T]
            samples[n_out : n_out + seg_samples.shape[0]] = seg_samples[:, perm.T]
            n_out += seg_samples.shape[0]
            done += nb
            if (start + done) % self.swap_interval == 0:
                self._swap_round(energies, perm, betas, swap_gen, rounds, attempts, accepts)
                rounds += 1
            if progress is not None:
                progress(done)
        new_state = state.replace(
            chains=chains,
            energies=energies,
            betas=betas,
            n_changed=n_changed,
            rng_state=dict(gen.bit_generator.state),
            n_sweeps=start + n_sweeps,
            permutation=perm,
            swap_rng_state=dict(swap_gen.bit_generator.state),
            swap_attempts=attempts,
            swap_accepts=accepts,
            n_swap_rounds=rounds,
        )
        return PTRun(new_state, samples, sweeps[kept], trace, sweeps, burn_in)
