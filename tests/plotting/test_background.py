"""The figure helper process: same PNG bytes as drawing here, and a fallback for every failure."""

from __future__ import annotations

import subprocess
from typing import Any

import numpy as np
import pytest

from attnpotts.plotting import background, figure_to_png, plot_contact_map


def _inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    scores = rng.random((30, 30))
    scores = scores + scores.T
    pos = np.arange(30.0)
    distances = np.abs(pos[:, None] - pos[None, :]) + 5 * rng.random((30, 30))
    return scores, (distances + distances.T) / 2


def _here(scores: np.ndarray, distances: np.ndarray) -> bytes:
    return figure_to_png(plot_contact_map(scores, distances, top=30, title="t"))


@pytest.fixture(autouse=True)
def _no_helper_left() -> Any:
    yield
    background._stop()


def test_helper_draws_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper's PNG equals the one drawn here, and it is the helper that drew it."""
    scores, distances = _inputs()
    expected = _here(scores, distances)
    background.start_renderer()
    assert background._child is not None

    def not_here(*args: Any) -> bytes:
        raise AssertionError("drawn in this process, not by the helper")

    monkeypatch.setattr(background, "_draw", not_here)
    png = background.render_png("plot_contact_map", scores, distances, top=30, title="t")
    assert png == expected
    assert background._child is None  # one helper, one figure


def test_without_helper_draws_here() -> None:
    scores, distances = _inputs()
    assert background._child is None
    assert background.render_png("plot_contact_map", scores, distances, top=30, title="t") == _here(
        scores, distances
    )


def test_dead_helper_falls_back() -> None:
    """A helper killed before the request: the figure is drawn here, same bytes."""
    scores, distances = _inputs()
    background.start_renderer()
    assert background._child is not None
    background._child.kill()
    background._child.wait()
    assert background.render_png("plot_contact_map", scores, distances, top=30, title="t") == _here(
        scores, distances
    )


def test_helper_that_cannot_start_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_process(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        raise OSError("no processes left")

    monkeypatch.setattr(background.subprocess, "Popen", no_process)
    background.start_renderer()
    assert background._child is None
    scores, distances = _inputs()
    assert background.render_png("plot_contact_map", scores, distances, top=30, title="t") == _here(
        scores, distances
    )


def test_unused_helper_is_ended() -> None:
    """A helper never asked (the command failed first) is killed at exit: nothing lingers."""
    background.start_renderer()
    child = background._child
    assert child is not None
    background._stop()
    assert child.poll() is not None and background._child is None


def test_arguments_that_do_not_pickle_are_drawn_here() -> None:
    """A figure whose arguments cannot be sent goes the in-process way, and its error is raised
    here; the helper is ended either way."""
    background.start_renderer()
    child = background._child
    assert child is not None
    with pytest.raises(TypeError):
        background.render_png("plot_contact_map", lambda: None)
    assert child.poll() is not None


def test_unknown_figure_raises_here() -> None:
    """A name the helper cannot draw is tried here, where its error is raised."""
    background.start_renderer()
    with pytest.raises(AttributeError, match="no_such_figure"):
        background.render_png("no_such_figure")
