"""Matplotlib figures (the only sub-package that imports matplotlib).

Figures are built with :class:`matplotlib.figure.Figure` directly, never through ``pyplot``: no global
figure registry, no backend selection, safe in worker processes. :func:`figure_to_png` turns one into
PNG bytes (for files and for reports with embedded images); :func:`render_png` draws one in a
helper process started early by :func:`start_renderer` (``plotting.background``), so that a short
command does not wait for matplotlib's import.

Figure modules are imported on first use of one of their names (``plotting.theory`` and
``plotting.contacts`` belong to other parts of the library; a missing or broken one cannot break
the others).
"""

from __future__ import annotations

import importlib
import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "figure_to_png",
    "new_figure",
    "plot_contact_map",
    "plot_coupling_comparison",
    "plot_depth_study",
    "plot_equivalence",
    "plot_learning_curves",
    "plot_sample_curves",
    "plot_training_curve",
    "render_png",
    "start_renderer",
]

#: Resolution of saved figures (dots per inch).
DEFAULT_DPI = 120

_LAZY = {
    "plot_contact_map": "contacts",
    "plot_theory_curves": "theory",
    "plot_coupling_comparison": "experiments",
    "plot_depth_study": "experiments",
    "plot_equivalence": "experiments",
    "plot_learning_curves": "experiments",
    "plot_sample_curves": "experiments",
    "plot_training_curve": "experiments",
    "render_png": "background",
    "start_renderer": "background",
}


def new_figure(width: float = 6.0, height: float = 4.0, **kwargs: Any) -> Figure:
    """A fresh figure of ``width x height`` inches, not registered with pyplot."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained", **kwargs)


def figure_to_png(fig: Figure, *, dpi: int = DEFAULT_DPI) -> bytes:
    """Render ``fig`` to PNG bytes (deterministic: no creation date in the metadata)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'attnpotts.plotting' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
