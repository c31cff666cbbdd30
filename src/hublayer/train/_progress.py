"""How training shows progress: bars on a terminal, plain lines in logs, or nothing.

A run whose output goes to a file or a CI log would otherwise say nothing for minutes:
tqdm's bars are off there. So, unless told otherwise, a run that cannot draw bars prints
one line per epoch and one per tenth of an embedding pass, on stderr (where the bars go).

- ``progress=True``, or ``$HUBLAYER_PROGRESS=1``: bars; ``False``, or ``=0``: nothing.
- Otherwise bars when stderr is a terminal, else lines (``config.progress_style``).

Example:
    >>> progress_mode(False)
    'off'
    >>> ticker = Ticker("embeddings (train)", total=100, mode="lines", write=print)
    >>> ticker.update(55)
    embeddings (train): 55/100 (55%) in 0 s
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Literal

from hublayer import config

__all__ = ["Mode", "Ticker", "progress_mode", "write_line"]

#: How progress shows: tqdm bars, one plain line per step, or nothing.
Mode = Literal["bars", "lines", "off"]


def progress_mode(explicit: bool | None) -> Mode:
    """``"bars"``, ``"lines"`` or ``"off"`` for a ``progress=`` argument (see the module)."""
    style = config.progress_style(explicit)
    return "bars" if style == "bars" else "lines" if style == "lines" else "off"


def write_line(text: str) -> None:
    """Print one progress line on stderr, flushed, so a log shows it at once."""
    print(text, file=sys.stderr, flush=True)


class Ticker:
    """Counts work done and, in ``"lines"`` mode, prints a line at each tenth of ``total``
    and when it is reached.

    Without a known ``total`` it prints every ``every`` units instead. With ``quiet_for``,
    nothing prints before that many seconds have passed (fast loops stay one line).

    Args:
        label: what is being counted, at the start of each line.
        total: the amount of work, when known.
        mode: only ``"lines"`` prints.
        every: the step between lines without a ``total``.
        write: where lines go (stderr by default).
        quiet_for: seconds to wait before the first line.
    """

    def __init__(
        self,
        label: str,
        *,
        total: int | None,
        mode: Mode,
        every: int = 1000,
        write: Callable[[str], object] = write_line,
        quiet_for: float = 0.0,
    ) -> None:
        self.label = label
        self.total = total if total else None
        self.enabled = mode == "lines"
        self.step = max(1, -(-self.total // 10)) if self.total else max(1, every)
        self.write = write
        self.done = 0
        self.next = self.step
        self.finished = False
        self.started = time.perf_counter()
        self.quiet_for = quiet_for

    def update(self, count: int) -> None:
        """Add ``count`` units; print a line when a tenth (or ``every``) is crossed."""
        self.done += count
        last = self.total is not None and self.done >= self.total and not self.finished
        if not self.enabled or (self.done < self.next and not last):
            return
        self.finished = self.finished or last
        while self.next <= self.done:
            self.next += self.step
        elapsed = time.perf_counter() - self.started
        if elapsed < self.quiet_for:
            return
        if self.total:
            share = min(self.done / self.total, 1.0)
            self.write(
                f"{self.label}: {self.done:,}/{self.total:,} ({share:.0%}) in {elapsed:.0f} s"
            )
        else:
            self.write(f"{self.label}: {self.done:,} in {elapsed:.0f} s")
