"""One small progress reporter for every long loop: a tqdm bar on a terminal, plain lines otherwise.

On a terminal the reporter draws a tqdm bar (removed when done). Anywhere else (a log file, a
pipe, a batch job) it writes plain lines without escape codes, at most one every
``interval_s`` seconds plus one when the work is complete::

    train transformer: 12/100 epochs (12%)  loss 2.1043  elapsed 0:00:41  eta 0:05:01

The ETA is ``elapsed * (total - done) / done`` over the work done since the reporter started
(work done before, e.g. epochs of a resumed run, does not count towards the rate).

Example::

    with Progress(len(items), "fit", unit="item") as bar:
        for item in items:
            loss = fit(item)
            bar.update(1, loss=loss)
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float | None) -> str:
    """``H:MM:SS`` (``"?"`` for an unknown or infinite duration)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Progress of ``total`` units of work (a tqdm bar on a terminal, plain lines otherwise).

    Args:
        total: units of work (``None``: unknown; no percentage or ETA).
        desc: what is being done (the line's prefix).
        unit: name of a unit (``"epochs"``, ``"sweeps"``).
        initial: units already done (e.g. by a resumed run).
        stream: where to write (default ``sys.stderr``).
        interval_s: least seconds between two plain lines.
        bar: ``True`` for a tqdm bar, ``False`` for plain lines, ``None``: a bar exactly when
            ``stream`` is a terminal.
        enabled: ``False`` writes nothing (``update`` still counts).
        clock: time source (seconds; for tests).
    """

    def __init__(
        self,
        total: int | None,
        desc: str = "",
        *,
        unit: str = "it",
        initial: int = 0,
        stream: TextIO | None = None,
        interval_s: float = 10.0,
        bar: bool | None = None,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total is not None and int(total) < 0:
            raise ValueError(f"total must be None or >= 0, got {total}")
        if not interval_s >= 0:
            raise ValueError(f"interval_s must be >= 0, got {interval_s}")
        self.total = None if total is None else int(total)
        self.desc, self.unit = desc, unit
        self.done = self._start = int(initial)
        self.stream: TextIO = sys.stderr if stream is None else stream
        self.interval_s = float(interval_s)
        self.enabled = enabled
        self.loss: float | None = None
        self.info: dict[str, Any] = {}
        self._clock = clock
        self._t0 = clock()
        self._last_line: float | None = None
        self._shown = self.done
        self._closed = False
        self._bar: Any = None
        if enabled and (bar if bar is not None else _isatty(self.stream)):
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.total, initial=self.done, desc=desc, unit=unit, leave=False,
                file=self.stream, dynamic_ncols=True,
            )  # fmt: skip

    # ------------------------------------------------------------------ state
    @property
    def elapsed_s(self) -> float:
        """Seconds since the reporter started."""
        return self._clock() - self._t0

    @property
    def eta_s(self) -> float | None:
        """Estimated seconds to ``total`` (``None`` if unknown: no total or nothing done yet)."""
        if self.total is None:
            return None
        new = self.done - self._start
        if self.done >= self.total:
            return 0.0
        if new <= 0:
            return None
        return self.elapsed_s * (self.total - self.done) / new

    def line(self) -> str:
        """The plain progress line of the current state."""
        head = f"{self.desc}: " if self.desc else ""
        if self.total is None:
            parts = [f"{head}{self.done} {self.unit}"]
        else:
            pct = 100.0 * self.done / self.total if self.total else 100.0
            parts = [f"{head}{self.done}/{self.total} {self.unit} ({pct:.0f}%)"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        parts.extend(f"{k} {_fmt_value(v)}" for k, v in self.info.items())
        parts.append(f"elapsed {format_duration(self.elapsed_s)}")
        if self.total is not None:
            parts.append(f"eta {format_duration(self.eta_s)}")
        return "  ".join(parts)

    # ---------------------------------------------------------------- updates
    def update(self, n: int = 1, *, loss: float | None = None, **info: Any) -> None:
        """Count ``n`` more units; ``loss`` and other ``info`` (name -> value) are shown."""
        self.set(self.done + int(n), loss=loss, **info)

    def set(
        self, done: int, total: int | None = None, *, loss: float | None = None, **info: Any
    ) -> None:
        """Set the units done (and optionally a new total), for callers that report absolute counts."""
        if total is not None:
            self.total = int(total)
            if self._bar is not None:
                self._bar.total = self.total
        step = int(done) - self.done
        self.done = int(done)
        if loss is not None:
            self.loss = float(loss)
        self.info.update(info)
        if not self.enabled or self._closed:
            return
        if self._bar is not None:
            post = {**({"loss": f"{self.loss:.4f}"} if self.loss is not None else {}),
                    **{k: _fmt_value(v) for k, v in self.info.items()}}  # fmt: skip
            if post:
                self._bar.set_postfix(post, refresh=False)
            self._bar.update(step)
            return
        now = self._clock()
        finished = self.total is not None and self.done >= self.total
        if finished or self._last_line is None or now - self._last_line >= self.interval_s:
            self._write(now)

    def close(self) -> None:
        """Finish: remove the bar, or write a last plain line if the last state was not shown."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self._last_line is not None and self._shown != self.done:
            self._write(self._clock())

    def _write(self, now: float) -> None:
        self.stream.write(self.line() + "\n")
        self.stream.flush()
        self._last_line = now
        self._shown = self.done

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _fmt_value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
