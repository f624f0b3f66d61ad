"""Progress bars for loops over galaxies (tqdm; silent when not a terminal or when disabled), and periodic
progress lines for long loops whose bar nobody sees (a job's log file)."""

from __future__ import annotations

import os
import sys
import time

from tqdm.auto import tqdm

__all__ = ["progress", "progress_mode", "ProgressLines"]


def progress_mode() -> str:
    """How progress is shown: ``"off"`` (``GALTAXA_PROGRESS=0``), ``"bars"`` (stderr is a terminal, or
    ``GALTAXA_PROGRESS=1``) or ``"lines"`` (a log file: :class:`ProgressLines` for the long loops)."""
    flag = os.environ.get("GALTAXA_PROGRESS", "")
    if flag == "0":
        return "off"
    return "bars" if flag == "1" or sys.stderr.isatty() else "lines"


def progress(iterable=None, total=None, desc: str = "", unit: str = "gal", disable: bool | None = None, **kw):
    """Wrap an iterable in a tqdm bar.

    The bar is shown on a terminal and hidden in CI or when ``GALTAXA_PROGRESS=0``.
    """
    if disable is None:
        disable = progress_mode() != "bars"
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True, **kw)


class ProgressLines:
    """One line on stderr per step of a long loop, at most every ``every_s`` seconds (and after the first and the
    last step): what a bar shows, for a log file that no bar reaches.

    ``galtaxa train`` in a batch job prints, e.g.::

        galtaxa: classifier epoch 3/30: loss 0.412, val_macro_f1 0.61; 14 s per epoch, about 6 min left

    Parameters
    ----------
    name : str
        What is running.
    total : int
        Number of steps.
    every_s : float
        Fewest seconds between two lines.
    unit : str
        What a step is.
    stream : file, optional
        Default ``sys.stderr``.
    """

    def __init__(self, name: str, total: int, every_s: float = 30.0, unit: str = "epoch", stream=None):
        self.name, self.total, self.every_s, self.unit = name, int(total), float(every_s), unit
        self.stream = stream if stream is not None else sys.stderr
        self._start = time.monotonic()
        self._last = None
        self._done = 0

    def update(self, step: int, values: dict | None = None) -> bool:
        """Report that step ``step`` (0-based) finished, with ``values`` (numbers are shown); returns whether a
        line was printed."""
        self._done += 1
        now = time.monotonic()
        last = step + 1 >= self.total
        if self._last is not None and not last and now - self._last < self.every_s:
            return False
        self._last = now
        per = (now - self._start) / self._done
        left = per * max(0, self.total - step - 1)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in (values or {}).items()
                          if isinstance(v, (int, float)) and not isinstance(v, bool) and k != self.unit)
        eta = "done" if last else f"about {_duration(left)} left"
        print(f"galtaxa: {self.name} {self.unit} {step + 1}/{self.total}" + (f": {shown}" if shown else "")
              + f"; {_duration(per)} per {self.unit}, {eta}", file=self.stream, flush=True)
        return True


def _duration(seconds: float) -> str:
    """``seconds`` as a person reads it: 14 s, 6 min, 1.5 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
