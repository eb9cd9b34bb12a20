"""The predicted-vs-true contact map figure draws what it is given."""

from __future__ import annotations

import numpy as np
import pytest

from attnpotts.errors import ShapeError, ValidationError
from attnpotts.plotting import figure_to_png
from attnpotts.plotting.contacts import plot_contact_map


def test_contact_map_figure() -> None:
    L = 12
    rng = np.random.default_rng(0)
    S = rng.random((L, L))
    S = S + S.T
    D = rng.uniform(3, 15, size=(L, L))
    D = D + D.T
    D[3] = D[:, 3] = np.nan  # a column without structure
    fig = plot_contact_map(S, D, top=5, positions=np.arange(10, 10 + L))
    ax = fig.axes[0]
    # title reports the precision of the shown pairs among those of known distance
    assert "top 5 pairs" in ax.get_title() and "precision" in ax.get_title()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(lbl.startswith("contacts") for lbl in labels)
    n_pred = sum(
        len(c.get_offsets()) for c in ax.collections if c.get_label().startswith("predicted")
    )
    assert n_pred == 5
    assert figure_to_png(fig)[:4] == b"\x89PNG"
    only = plot_contact_map(S)
    assert "precision" not in only.axes[0].get_title()
    with pytest.raises(ShapeError):
        plot_contact_map(S, D[:5, :5])
    with pytest.raises(ValidationError):
        plot_contact_map(S, top=0)
