"""Draw a figure in a helper process that imports matplotlib while the caller works.

Importing matplotlib and drawing a first figure takes about 0.7 s, on the critical path of a short
command. :func:`start_renderer` starts a child Python at once; it imports matplotlib and draws a
throw-away figure on another core while the caller imports torch and fits. :func:`render_png`
later sends it one figure's arguments (pickled through its stdin) and reads the PNG bytes back.
Whatever goes wrong in the child (it cannot start, dies, or times out), the figure is drawn in
this process instead: the bytes are the same either way (:func:`attnpotts.plotting.figure_to_png`
is deterministic). A child that is never asked is killed when this process exits; one whose
parent dies reads the end of its stdin and exits.

Run as ``python -m attnpotts.plotting.background`` it is that child.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["render_png", "start_renderer"]

logger = logging.getLogger(__name__)

#: The first bytes of every PNG file.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Seconds to wait for the child's PNG before drawing here instead.
TIMEOUT_S = 120.0

_child: subprocess.Popen[bytes] | None = None


def start_renderer() -> None:
    """Start the helper process for the next :func:`render_png` of this process (once)."""
    global _child
    if _child is not None:
        return
    package_parent = str(Path(__file__).resolve().parents[2])  # the folder holding attnpotts/
    path = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH", "")) if p)
    try:
        _child = subprocess.Popen(
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": path},
        )  # fmt: skip
    except OSError as exc:  # no process to spare: draw here later
        logger.debug("figure helper did not start (%s); figures are drawn in this process", exc)
        return
    atexit.unregister(_stop)  # registered once however many helpers this process starts
    atexit.register(_stop)


def _stop() -> None:
    """End a helper that was never asked (at exit: the command failed before its figure)."""
    global _child
    child, _child = _child, None
    if child is not None:
        _end(child)


def _end(child: subprocess.Popen[bytes]) -> None:
    """Kill ``child`` if it still runs, reap it and close its pipes."""
    if child.poll() is None:
        child.kill()
    child.wait()
    for pipe in (child.stdin, child.stdout):
        with contextlib.suppress(OSError):
            if pipe is not None:
                pipe.close()


def render_png(function: str, *args: Any, dpi: int | None = None, **kwargs: Any) -> bytes:
    """PNG bytes of the figure ``attnpotts.plotting.<function>(*args, **kwargs)`` at ``dpi``
    (default :data:`~attnpotts.plotting.DEFAULT_DPI`): drawn by the helper if one was started,
    else (or if it fails) in this process."""
    global _child
    child, _child = _child, None
    if child is not None:
        out = b""
        try:
            out, _ = child.communicate(pickle.dumps((function, args, kwargs, dpi)), timeout=TIMEOUT_S)
        except Exception as exc:  # whatever failed (arguments that do not pickle, a hung helper)
            logger.debug("figure helper failed (%s); drawing here", exc)
        finally:
            _end(child)
        if child.returncode == 0 and out.startswith(PNG_SIGNATURE):
            return out
        logger.debug("figure helper gave no figure (exit status %s); drawing here", child.returncode)
    return _draw(function, args, kwargs, dpi)


def _draw(function: str, args: tuple[Any, ...], kwargs: dict[str, Any], dpi: int | None) -> bytes:
    from .. import plotting

    fig = getattr(plotting, function)(*args, **kwargs)
    return plotting.figure_to_png(fig, **({} if dpi is None else {"dpi": dpi}))


def _serve() -> int:
    """The child: warm matplotlib up, then draw the one figure asked on stdin to stdout."""
    import numpy as np

    # the imports and the fonts' first use are the slow part: done before the request comes
    _draw("plot_contact_map", (np.eye(8),), {"top": 4, "title": "warm-up"}, None)
    request = sys.stdin.buffer.read()
    if not request:  # the parent is gone or drew nothing
        return 0
    function, args, kwargs, dpi = pickle.loads(request)  # an error exits non-zero: the parent draws
    sys.stdout.buffer.write(_draw(function, args, kwargs, dpi))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover - the child process
    from ..processes import exit_now

    # without the interpreter's teardown of matplotlib, which the parent would wait for
    # (communicate() returns at the exit): 0.14-0.22 s instead of 0.29-0.48 s per figure
    exit_now(_serve())
