"""Memory estimate of a DCA fit, checked *before* fitting (peer tools crash or overflow instead).

The estimate counts the large buffers of a fit through :func:`attnpotts.training.train` with
full-batch L-BFGS, in bytes, for ``P`` coupling parameters of ``b`` bytes each:

* both models: the interpreter with its libraries (:data:`RUNTIME_BYTES`);
* full Potts (``"plm"``, symmetric): ``P = L (L - 1) q^2 / 2`` stored parameters (one triangle)
  and ``F = L^2 q^2`` entries of the full coupling tensor. Parameters, gradient and the training
  loop's last-good-state copy of the parameters (``3 P``); L-BFGS state ``(2 m + 5) P`` (``m``
  history pairs, fewer when the fit has fewer iterations; direction, previous gradient, two
  line-search gradients and a flat copy; the loop copies it only when a
  checkpoint is written, which a DCA fit does not); per evaluation the full coupling tensor, the
  kernel's transposed copy, the gradient accumulators (one per thread ``T`` below
  ``L q = 2000``, one from there on, where the pass runs by blocks of ``k`` sites: ``C``), their
  sum and the gradient of ``J`` (``(4 + C) F``), and in blocks each thread's two contiguous
  slices of a block (``2 T L q k q``, ``T`` at most the number of blocks); the logits of a
  chunk of ``B`` sequences and their gradients (``4 B L q``, the final loss evaluation) plus
  the row index of the chunk;
* factored attention (``"factored"``, :mod:`attnpotts.models.factored_kernels`): parameters
  ``P = H (2 L d + q^2) + L q`` with gradients and L-BFGS state as above; the sequences as
  tokens and row indices (``21 N L`` bytes); and the largest of three phases that never overlap:
  an evaluation (the attention matrices ``A: (H, L, L)`` with softmax intermediates and
  gradients, ``3 H L^2``, plus one block of ``|I|`` sites of ``J``, its gradient and one
  accumulator per thread, ``(T + 3) L q |I| q`` with ``L q |I| q`` about
  :data:`~attnpotts.models.factored_kernels.BLOCK_BYTES`; where the pass runs by sub-blocks
  of ``k = 8`` sites, one per thread (``factored_kernels.blocked_pass``), ``|I| = T k`` and
  ``5 L q |I| q`` (the block, its copy, one gradient and two slices of ``k`` sites a thread);
  on a CUDA device a block of about
  :data:`~attnpotts.models.factored_kernels.DEVICE_BLOCK_BYTES` with its gradient and a copy,
  the tokens and a chunk's one-hot rows (about
  :data:`~attnpotts.models.factored_kernels.DENSE_CHUNK_BYTES`) and logits), the scores from
  the factors (``2 H L^2`` plus float64 temporaries) and the final loss (``A`` and the logits and
  log-softmax of a chunk, ``2 R L q`` with ``R`` rows bounded by
  :data:`attnpotts.inference.EVAL_CHUNK_BYTES`), and before them the mean-field start
  (:mod:`attnpotts.dca.factored_start`: one ``(L (q-1))^2`` float64 matrix, up to ``L = 300`` at
  ``q = 21``). Neither ``J`` whole nor per-head activations appear.
  Measured (``benchmarks/bench_factored_memory.py``, peak resident memory of a child process):
  ``L = 1000, H = 32, N = 10,000`` under the default limit, one iteration: 0.97 GiB against an
  estimate of 0.98 GiB; the fit's own growth plus :data:`RUNTIME_BYTES`
  (``tests/dca/test_memory_measured.py``): estimate / peak 0.89-1.03 at ``L = 100-1000``,
  ``N = 1000-20,000``, ``H = 4-32``, both starts (``docs/dca-measurements.md``).

The estimate counts the large terms; the measured peak resident memory is reported next to it in
``benchmarks/bench_dca.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ResourceLimitError, ValidationError
from ..options import DEFAULT_MEMORY_LIMIT_GB

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "RUNTIME_BYTES",
    "MemoryEstimate",
    "check_memory",
    "device_free_bytes",
    "estimate_memory",
]

#: Resident memory of the interpreter with torch, numba and the compiled kernels loaded (bytes),
#: measured by ``benchmarks/bench_factored_memory.py`` (counted for both models: a small fit's
#: other terms can be this small).
RUNTIME_BYTES = 360 * 1024**2

#: Default budget of a fit (bytes): every command's ``--memory-limit-gb`` default.
DEFAULT_MEMORY_LIMIT = int(DEFAULT_MEMORY_LIMIT_GB * 1024**3)

_BYTES = {"float32": 4, "float64": 8}

#: Parts of an estimate that stay in host memory when the fit runs on a GPU.
_HOST_PARTS = ("runtime", "start")


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak bytes of a fit and its parts."""

    total_bytes: int
    parts: dict[str, int] = field(default_factory=dict)
    model: str = "plm"
    dtype: str = "float32"
    chunk: int = 0

    @property
    def total_gib(self) -> float:
        """``total_bytes`` in GiB."""
        return self.total_bytes / 1024**3

    @property
    def device_parts(self) -> dict[str, int]:
        """The parts that a fit on a GPU holds there: all but the interpreter and the start."""
        return {k: v for k, v in self.parts.items() if k not in _HOST_PARTS}

    @property
    def device_bytes(self) -> int:
        """The sum of :attr:`device_parts`: what a CUDA fit is checked against free memory with."""
        return sum(self.device_parts.values())


def estimate_memory(
    n_sequences: int,
    n_sites: int,
    n_states: int,
    *,
    model: str = "plm",
    dtype: str = "float32",
    lbfgs_history: int = 5,
    max_iter: int | None = None,
    chunk: int | None = None,
    n_heads: int = 32,
    key_dim: int = 32,
    n_threads: int | None = None,
    start: str = "random",
    device: str | None = None,
) -> MemoryEstimate:
    """Estimate the peak memory of a DCA fit (see the module docstring for the terms).

    Args:
        n_sequences: sequences fitted (unique sequences when duplicates are collapsed).
        n_sites, n_states: ``L`` and ``q``.
        model: ``"plm"`` (full Potts) or ``"factored"``.
        dtype: ``"float32"`` or ``"float64"``.
        lbfgs_history: L-BFGS memory ``m``.
        max_iter: L-BFGS iterations of the fit, when known: a fit of ``k < m`` iterations stores
            at most ``k`` curvature pairs (``None``: ``m``).
        chunk: sequences per forward pass (``None``: all at once).
        n_heads, key_dim: factored attention sizes.
        n_threads: threads of the fused kernel (``None``: numba's current number of threads).
        start: factored attention's start, ``"mean-field"`` (its covariance matrix, when
            ``L (q-1)`` is within :data:`attnpotts.dca.factored_start.MEAN_FIELD_MAX_DIM`) or
            ``"random"``.
        device: where the fit runs (``None``: the CPU). Factored attention on a CUDA device
            computes its pass as one-hot matrix products over larger blocks of ``J``
            (:data:`~attnpotts.models.factored_kernels.DEVICE_BLOCK_BYTES`), counted as such.
    """
    if dtype not in _BYTES:
        raise ValidationError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if model not in ("plm", "factored"):
        raise ValidationError(f"model must be 'plm' or 'factored', got {model!r}")
    N, L, q = int(n_sequences), int(n_sites), int(n_states)
    if N < 1 or L < 2 or q < 2:
        raise ValidationError(f"need N >= 1, L >= 2, q >= 2, got N={N}, L={L}, q={q}")
    if max_iter is not None and int(max_iter) < 1:
        raise ValidationError(f"max_iter must be >= 1 (or None: a full L-BFGS history), got {max_iter}")
    b = _BYTES[dtype]
    B = N if chunk is None else max(1, min(int(chunk), N))
    m = int(lbfgs_history) if max_iter is None else min(int(lbfgs_history), int(max_iter))
    activations = 4 * B * L * q * b + B * L * (8 + 4)  # logits, softmax, grads; tokens, rows
    if model == "plm":
        if n_threads is None:
            import numba

            n_threads = int(numba.get_num_threads())
        from ..models.kernels import _PAIR_BLOCK_SITES, _PAIR_BLOCKED_MIN_WIDTH

        T = max(1, min(int(n_threads), N))
        # the fused pass's gradient accumulators: one per thread, or one in all from
        # L q >= _PAIR_BLOCKED_MIN_WIDTH on, where it runs by blocks of sites (PairWorkspace)
        blocked = L * q >= _PAIR_BLOCKED_MIN_WIDTH
        C = 1 if blocked else T
        P = L * (L - 1) // 2 * q * q
        F = L * L * q * q
        k = min(L, _PAIR_BLOCK_SITES)  # each running block's two contiguous slices
        slices = 2 * min(T, -(-L // k)) * L * q * k * q if blocked else 0
        parts = {
            "runtime": RUNTIME_BYTES,
            "parameters_and_gradients": 3 * P * b,
            "lbfgs_state": (2 * m + 5) * P * b,  # history, x0, d, g, two line-search gradients
            "coupling_tensor_and_kernel": ((4 + C) * F + slices) * b,
            "activations": activations,
        }
    else:
        from ..inference import eval_rows
        from ..models.factored_kernels import blocked_pass, dense_chunk_rows, pl_block
        from .factored_start import mean_field_start_bytes

        if start not in ("mean-field", "random"):
            raise ValidationError(f"start must be 'mean-field' or 'random', got {start!r}")

        if n_threads is None:
            import numba

            n_threads = int(numba.get_num_threads())
        T = max(1, int(n_threads))
        P = n_heads * (2 * L * key_dim + q * q) + L * q
        fused = not _on_cuda(device)
        K = pl_block(L, q, b, fused=fused, n_threads=T)
        A = n_heads * L * L * b  # one (H, L, L) attention tensor
        # the three phases do not overlap: an evaluation (A with its softmax intermediates and
        # gradients, one block of J), the scores (A, its masked copy, float64 block temporaries,
        # the L x L matrices) and the final loss (A; logits and log-softmax of a chunk, no grad)
        if fused and blocked_pass(L, q, b, T):  # J[I], its transposed copy, one gradient and two
            # contiguous slices of a sub-block per thread (together J[I]'s size again, twice)
            evaluation = 3 * A + 5 * L * q * K * q * b
        elif fused:  # the numba kernel: J[I], its transposed copy, the sum, T accumulators
            evaluation = 3 * A + (T + 3) * L * q * K * q * b
        else:  # matrix products: J[I], its gradient and a copy, the tokens (int64) and, per
            # chunk of C sequences, the one-hot rows with their index and the logits with
            # their log-softmax (overwritten by its gradient)
            C = dense_chunk_rows(N, L, q, b)
            evaluation = (3 * A + 3 * L * q * K * q * b + 8 * N * L
                          + C * L * (q * b + 8) + 2 * C * K * q * b)
        scores = 2 * A + 6 * 64 * n_heads * L * 8 + 5 * L * L * 8
        # the final loss runs forward-only in chunks of at most EVAL_CHUNK_BYTES of logits
        R = eval_rows(B, L, q, b)
        final_loss = A + 2 * R * L * q * b + R * L * (8 + 4)
        # the start (before the fit: its covariance matrix, factorised and inverted in place)
        first = mean_field_start_bytes(L, q) if start == "mean-field" else 0
        busiest = max(evaluation, scores, final_loss)
        parts = {
            "runtime": RUNTIME_BYTES,
            "parameters_and_gradients": 4 * P * b,
            "lbfgs_state": (2 * m + 5) * P * b,
            "sequences": 21 * N * L,
            "attention_and_blocks": evaluation,
            "scores": max(0, scores - evaluation),
            # what the final loss needs beyond the larger of the other two phases
            "activations": max(0, final_loss - max(evaluation, scores)),
            # what the start needs beyond the largest phase of the fit
            "start": max(0, first - busiest),
        }
    return MemoryEstimate(int(sum(parts.values())), parts, model, dtype, B)


def _on_cuda(device: str | None) -> bool:
    return device is not None and str(device).startswith("cuda")


def check_memory(estimate: MemoryEstimate, limit_bytes: int = DEFAULT_MEMORY_LIMIT, *,
                 device: str | None = None) -> None:
    """Raise :class:`~attnpotts.errors.ResourceLimitError` when ``estimate`` exceeds the limit,
    or, on a CUDA ``device``, when its share on the device (all but the parts in host memory:
    the interpreter, :data:`RUNTIME_BYTES`, and the mean-field start) exceeds the device's free
    memory.

    The message gives the estimate, its largest part and the options that reduce it.
    """
    if estimate.total_bytes > limit_bytes:
        worst = _largest_part(estimate.parts)
        raise ResourceLimitError(
            f"the {estimate.model} fit needs about {estimate.total_gib:.2f} GiB "
            f"({_describe_part(estimate, worst)}), above the limit of "
            f"{limit_bytes / 1024**3:.2f} GiB; options that fit: "
            f"{'; '.join(_memory_hints(estimate, worst))}; or raise the limit (--memory-limit-gb; "
            "memory_limit_gb in Python) if the machine has the memory"
        )
    free = device_free_bytes(device)
    if free is not None and estimate.device_bytes > free:
        worst = _largest_part(estimate.device_parts)
        raise ResourceLimitError(
            f"the {estimate.model} fit needs about {estimate.device_bytes / 1024**3:.2f} GiB on "
            f"{device} ({_describe_part(estimate, worst)}), which has {free / 1024**3:.2f} GiB "
            f"free; options that fit: {'; '.join(_memory_hints(estimate, worst))}; or the CPU "
            "(--device cpu)"
        )


def _largest_part(parts: dict[str, int]) -> str:
    return max(parts, key=lambda k: parts[k])


def _describe_part(estimate: MemoryEstimate, part: str) -> str:
    return f"largest part: {part}, {estimate.parts[part] / 1024**3:.2f} GiB"


def _memory_hints(estimate: MemoryEstimate, worst: str) -> list[str]:
    """The options that make ``estimate`` smaller, given its largest part ``worst``."""
    hints = []
    if estimate.model == "plm":
        hints.append("--model factored (factored attention stores O(H (L d + q^2)) parameters)")
        hints.append("a smaller lbfgs_history")
    if estimate.dtype == "float64":
        hints.append("dtype float32")
    if worst == "activations":
        hints.append("a smaller chunk (sequences per forward pass)")
    if worst == "start":
        hints.append("start='random' (no mean-field covariance matrix)")
    hints.append("fewer columns (focus mode or a column gap filter)")
    return hints


def device_free_bytes(device: str | None) -> int | None:
    """Free memory of a CUDA ``device`` in bytes (``torch.cuda.mem_get_info``); ``None`` for
    other devices, no device, or a machine without CUDA (the device check is then not made)."""
    if device is None:
        return None
    import torch

    dev = torch.device(device)
    if dev.type != "cuda" or not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info(dev)
    return int(free)
