"""``records.SkippedRecords``: what Ray read tasks skipped, totalled where the caller is.

A read task runs in another process, so a count it keeps dies with it, and its log
lines reach the driver only with ``log_to_driver=True``. Each read task of
:func:`records.ray_dataset` reports its piece to a small Ray actor instead::

    read task (path, start) ─ report(records, skipped) ─▶ _Tally actor ◀─ total / by_file()
                                                          (0 CPUs)         driver

A report is keyed by its piece, so a dataset read twice (or a task retried) counts
each record once. The actor lives as long as the :class:`SkippedRecords` that made it.

Example:
    >>> skipped = records.SkippedRecords()  # doctest: +SKIP
    >>> ds = records.ray_dataset(files, on_error="skip", skipped=skipped)  # doctest: +SKIP
    >>> rows = ds.count()  # doctest: +SKIP
    >>> skipped.total, skipped.by_file()  # doctest: +SKIP
    (2, {'data/a.tfrecord': 2, 'data/b.tfrecord': 0})
"""

from __future__ import annotations

import time
from typing import Any

from hublayer._ray import require_ray

__all__ = ["SkippedRecords"]

# (path, start) -> (end or None for "to the end of the file", last piece?, records, skipped)
_Report = tuple[int | None, bool, int, int]


class _Tally:
    """The actor: one report per piece."""

    def __init__(self) -> None:
        self.pieces: dict[tuple[str, int], _Report] = {}

    def report(
        self, path: str, start: int, end: int | None, last: bool, records: int, skipped: int
    ) -> None:
        self.pieces[(path, start)] = (end, last, records, skipped)

    def pieces_of(self) -> dict[tuple[str, int], _Report]:
        return dict(self.pieces)


def _file_counts(pieces: dict[tuple[str, int], _Report], path: str) -> tuple[int, int] | None:
    """``(records, skipped)`` of ``path`` once every piece of it reported, else None."""
    records = skipped = 0
    start = 0
    while (path, start) in pieces:
        end, last, got, bad = pieces[(path, start)]
        records, skipped = records + got, skipped + bad
        if last or end is None:
            return records, skipped
        start = end
    return None


class SkippedRecords:
    """Counts of the bad records that ``records.ray_dataset(on_error="skip")`` skipped.

    Pass one as ``ray_dataset(..., skipped=)``; read it after the dataset ran (``count``,
    ``materialize``, iterating, ``write_*``). Counts arrive as each read task ends, so
    while a dataset is still running they are partial. Make it after ``ray.init``
    (else a local Ray starts); it pickles, and its actor ends when it is deleted.

    Attributes:
        total: records skipped in every file read so far.

    Example:
        >>> skipped = records.SkippedRecords()  # doctest: +SKIP
        >>> ds = records.ray_dataset("data/*.tfrecord", on_error="skip",  # doctest: +SKIP
        ...                          skipped=skipped)
        >>> ds.count(), skipped.total  # doctest: +SKIP
        (998, 2)
    """

    def __init__(self) -> None:
        ray = require_ray("records.SkippedRecords")
        self._actor: Any = ray.remote(num_cpus=0)(_Tally).remote()

    def report(
        self, path: str, start: int, end: int | None, last: bool, records: int, skipped: int
    ) -> None:
        """Record what one piece read (called by read tasks; waits for the actor)."""
        import ray

        ray.get(self._actor.report.remote(path, start, end, last, records, skipped))

    def _pieces(self) -> dict[tuple[str, int], _Report]:
        import ray

        pieces: dict[tuple[str, int], _Report] = ray.get(self._actor.pieces_of.remote())
        return pieces

    @property
    def total(self) -> int:
        """Records skipped in every piece read so far."""
        return sum(report[3] for report in self._pieces().values())

    def by_file(self) -> dict[str, int]:
        """Records skipped per file read so far (0 for a file read without a skip)."""
        counts: dict[str, int] = {}
        for (path, _), report in sorted(self._pieces().items()):
            counts[path] = counts.get(path, 0) + report[3]
        return counts

    def file_counts(self, path: str, *, wait: float = 0.0) -> tuple[int, int] | None:
        """``(records, skipped)`` of one file once all its pieces reported, else None.

        Args:
            path: the file, as ``ray_dataset`` got it.
            wait: seconds to wait for the last reports to arrive.
        """
        deadline = time.monotonic() + wait
        while True:
            counts = _file_counts(self._pieces(), path)
            if counts is not None or time.monotonic() >= deadline:
                return counts
            time.sleep(0.05)
