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
    named = plot_contact_map(S, D, top=5, title="family (plm)").axes[0].get_title()
    assert named.splitlines()[0] == "family (plm)" and "precision" in named.splitlines()[1]
    with pytest.raises(ShapeError):
        plot_contact_map(S, D[:5, :5])
    with pytest.raises(ValidationError):
        plot_contact_map(S, top=0)


def _tick_labels(axis: object) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels()]  # type: ignore[attr-defined]


def test_contact_map_axes_count_from_one() -> None:
    L = 53
    rng = np.random.default_rng(1)
    S = rng.random((L, L))
    S = S + S.T
    D = rng.uniform(3, 15, size=(L, L))
    fig = plot_contact_map(S, D + D.T)
    ax = fig.axes[0]
    for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, sorted(ax.get_ylim()))):
        labels = _tick_labels(axis)
        assert labels[0] == "1" and "0" not in labels
        assert all(1 <= int(t) <= L for t in labels)
        assert 3 <= len(labels) <= 9
        assert tuple(lim) == (0.5, L + 0.5)  # no column 0, nothing past column L
    assert ax.get_xlabel() == "column j" and ax.get_ylabel() == "column i"
    # the first site number labels the first tick, e.g. alignment columns from 10
    fig = plot_contact_map(S[:20, :20], positions=np.arange(10, 30), position_label="residue")
    ax = fig.axes[0]
    assert _tick_labels(ax.xaxis)[0] == "10" and ax.get_xlabel() == "residue j"
    assert ax.get_xlim() == (9.5, 29.5)
