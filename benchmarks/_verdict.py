"""Ratios with an interval, and the verdict each earns: met, not met, within noise, or
too few runs.

A ratio of two medians says little on a busy machine: with three runs at a load of 4 on
2 cores, one slow minute moves a median by 30 %. So every ratio also gets an interval
and a verdict:

- the contenders run in rounds (A B A B ...), so run *i* of one and run *i* of the
  other saw the same minute of the machine: they are a **pair**. From
  :data:`MIN_PAIRS` pairs on, the interval is a percentile bootstrap over the pairs: draw
  rounds with replacement, take the ratio of the medians of the drawn runs, keep the 5th
  and 95th percentiles (a **90 %** interval). Below that a bootstrap has too few distinct
  draws to mean 90 %, so the interval is the **min-max** of the pairs' own ratios (one
  pair: a point), and is labelled so (:func:`interval_label`);
- **min ratio** is the ratio of the fastest runs, beside the median: noise only ever
  adds time, so the minima are what each contender can do on a quiet machine;
- the **verdict** is ``"met"`` when the whole interval meets the target, ``"not met"``
  when none of it does, and ``"within noise"`` when the target lies inside it; with
  fewer than :data:`MIN_PAIRS` pairs it is ``"too few runs"`` whatever the figure, so
  one run (an interval that collapsed to a point) never reads as met. A ratio without a
  target has verdict ``""``, one that could not be computed ``"n/a"``.

The bootstrap is seeded, so the same runs always give the same interval and RESULTS.md
regenerates from its JSON byte for byte.

Example:
    >>> a, b = [1.0, 1.1, 0.9, 1.0, 1.05], [2.0, 2.1, 1.9, 2.2, 2.0]
    >>> low, high = interval(a, b, "speed")
    >>> 1.8 < low <= high < 2.3
    True
    >>> [verdict(low, high, t, pairs=5) for t in (">= 1.5", ">= 2", ">= 3")]
    ['met', 'within noise', 'not met']
    >>> interval(a[:3], b[:3], "speed"), verdict(2.0, 2.1, ">= 1.5", pairs=3)
    ((1.909090909090909, 2.111111111111111), 'too few runs')
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from typing import Literal

__all__ = [
    "LEVEL",
    "MIN_PAIRS",
    "Kind",
    "Verdict",
    "check_target",
    "interval",
    "interval_label",
    "min_ratio",
    "pair_count",
    "ratio",
    "verdict",
]

Kind = Literal["time", "speed", "seconds"]
Verdict = Literal["met", "not met", "within noise", "too few runs", "n/a", ""]

#: Two-sided coverage of the bootstrap interval.
LEVEL = 0.90
#: Paired rounds a figure needs for a bootstrap interval and a verdict.
MIN_PAIRS = 5
_RESAMPLES = 2000


def check_target(value: float, target: str) -> bool | None:
    """Whether ``value`` meets a target such as ``"<= 1.05"``; None when there is none.

    Example:
        >>> check_target(1.0, "<= 1.05"), check_target(1.9, ">= 2"), check_target(3.0, "")
        (True, False, None)
    """
    parts = target.split()
    if len(parts) != 2:
        return None
    op, bound = parts[0], float(parts[1])
    checks: dict[str, Callable[[float, float], bool]] = {
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
    }
    if op not in checks:
        raise ValueError(f"Expected a target like '<= 1.05' or '>= 2'. Received: {target!r}")
    return checks[op](value, bound)


def _of(subject: float, peer: float | None, kind: Kind) -> float:
    if kind == "seconds" or peer is None:
        return subject
    return subject / peer if kind == "time" else peer / subject


def ratio(subject: Sequence[float], peer: Sequence[float], kind: Kind) -> float:
    """The figure from the medians: subject/peer for ``"time"``, peer/subject for
    ``"speed"``, the subject's median for ``"seconds"`` (``peer`` is ignored).

    Example:
        >>> ratio([1.0, 3.0, 2.0], [4.0, 4.0, 8.0], "speed"), ratio([2.0], [], "seconds")
        (2.0, 2.0)
    """
    med = statistics.median
    return _of(med(subject), med(peer) if peer else None, kind)


def min_ratio(subject: Sequence[float], peer: Sequence[float], kind: Kind) -> float:
    """The same figure from the fastest run of each side.

    Example:
        >>> min_ratio([1.0, 3.0, 2.0], [4.0, 4.0, 8.0], "time")
        0.25
    """
    return _of(min(subject), min(peer) if peer else None, kind)


def pair_count(subject: Sequence[float], peer: Sequence[float], kind: Kind) -> int:
    """How many paired rounds the runs make: round *i* of each side; runs only one side
    has are left out. A ``"seconds"`` figure has one side: each run is a round.

    Example:
        >>> pair_count([1.0, 2.0, 3.0], [1.0, 2.0], "time"), pair_count([1.0], [], "seconds")
        (2, 1)
    """
    return len(subject) if kind == "seconds" else min(len(subject), len(peer))


def interval_label(pairs: int) -> str:
    """What :func:`interval` computed for ``pairs`` paired rounds, for a table.

    Example:
        >>> interval_label(5), interval_label(3), interval_label(1)
        ('90 % interval', 'min-max of 3 pairs', 'one run')
    """
    if pairs >= MIN_PAIRS:
        return f"{LEVEL * 100:.0f} % interval"
    return "one run" if pairs == 1 else f"min-max of {pairs} pairs"


def interval(
    subject: Sequence[float],
    peer: Sequence[float],
    kind: Kind,
    *,
    level: float = LEVEL,
    resamples: int = _RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """A bootstrap interval for :func:`ratio`, resampling paired rounds; the min-max of
    the pairs' ratios below :data:`MIN_PAIRS` pairs (see :func:`interval_label`).

    Runs are paired by index (round *i* of each side); when one side has more runs, the
    extra ones are left out of the pairs. With one pair the interval is that pair's
    ratio: a single run cannot show its noise (its verdict is "too few runs").

    Args:
        subject: the subject's run times, in round order.
        peer: the peer's run times, in round order (ignored for ``"seconds"``).
        kind: see :func:`ratio`.
        level: two-sided coverage, 0.90 by default.
        resamples: bootstrap draws.
        seed: the draws' seed, so the interval is reproducible.

    Returns:
        ``(low, high)``, low <= high.

    Raises:
        ValueError: when a side has no runs.
    """
    if not subject or (kind != "seconds" and not peer):
        raise ValueError("Expected runs on both sides of the ratio. Received an empty side.")
    pairs = pair_count(subject, peer, kind)
    if pairs < MIN_PAIRS:
        own = [_of(subject[i], None if kind == "seconds" else peer[i], kind) for i in range(pairs)]
        return min(own), max(own)
    rng = random.Random(seed)
    med = statistics.median
    values = []
    for _ in range(resamples):
        picks = [rng.randrange(pairs) for _ in range(pairs)]
        a = med(subject[i] for i in picks)
        b = med(peer[i] for i in picks) if kind != "seconds" else None
        values.append(_of(a, b, kind))
    values.sort()
    tail = (1.0 - level) / 2
    low = values[int(tail * (resamples - 1))]
    high = values[round((1.0 - tail) * (resamples - 1))]
    return low, high


def verdict(low: float | None, high: float | None, target: str, *, pairs: int) -> Verdict:
    """``"met"`` if the whole interval meets ``target``, ``"not met"`` if none of it does,
    ``"within noise"`` otherwise; ``"too few runs"`` below :data:`MIN_PAIRS` pairs, met or
    not; ``""`` without a target, ``"n/a"`` without a value.

    Example:
        >>> [verdict(lo, hi, "<= 1.0", pairs=5) for lo, hi in [(0.8, 0.95), (0.9, 1.1), (1.2, 1.3)]]
        ['met', 'within noise', 'not met']
        >>> verdict(0.97, 0.97, ">= 0.95", pairs=1)
        'too few runs'
    """
    if not target:
        return ""
    if low is None or high is None:
        return "n/a"
    if pairs < MIN_PAIRS:
        return "too few runs"
    ends = {check_target(low, target), check_target(high, target)}
    if ends == {True}:
        return "met"
    return "not met" if ends == {False} else "within noise"
