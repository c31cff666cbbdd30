"""Version ranges for the foreign private APIs hublayer uses (``_foreign_*`` adapters).

Each adapter (:mod:`hublayer._foreign_tf`, :mod:`hublayer._foreign_keras`,
:mod:`hublayer._foreign_tf2jax`) wraps the private names of one library and states the
versions it was written and tested for. Outside that range it raises
``UnsupportedVersionError``, or takes a public fallback that it documents and logs;
``tests/test_foreign_apis.py`` exercises every adapter against the installed versions.

Example:
    >>> release("2.21.0rc1"), within(release("2.21.0"), (2, 16), (2, 21))
    ((2, 21), True)
"""

from __future__ import annotations

import re

__all__ = ["ANY_MINOR", "release", "span", "within"]

#: A range's high minor that stands for every minor of its major (``(3, 99)``: 3.x).
ANY_MINOR = 99


def release(version: str) -> tuple[int, int]:
    """``"2.21.0"`` -> ``(2, 21)``; anything unreadable -> ``(0, 0)`` (outside any range)."""
    found = re.match(r"(\d+)\.(\d+)", version)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def within(version: tuple[int, int], low: tuple[int, int], high: tuple[int, int]) -> bool:
    """Whether ``low <= version <= high`` (major, minor)."""
    return low <= version <= high


def span(low: tuple[int, int], high: tuple[int, int]) -> str:
    """``(2, 16), (2, 21)`` -> ``"2.16 to 2.21"``; a high minor of 99 means any minor.

    Example:
        >>> span((3, 0), (3, 99))
        '3.x'
    """
    if high[1] >= ANY_MINOR:
        return f"{high[0]}.x" if low == (high[0], 0) else f"{low[0]}.{low[1]} to {high[0]}.x"
    return f"{low[0]}.{low[1]} to {high[0]}.{high[1]}"
