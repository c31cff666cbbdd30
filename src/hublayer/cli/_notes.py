"""hublayer's log notices shown to a CLI user as plain lines on the current stderr."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Notes", "notes_shown", "show_notes"]

_LOGGER = "hublayer"


class Notes(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes records as bare messages to whatever ``sys.stderr`` is at the time.

    Binding the stream when a record is written, not when the handler is made, keeps a
    handler valid after a test runner or a caller swaps ``sys.stderr`` and closes the old one.

    Example:
        >>> Notes(logging.INFO).level == logging.INFO
        True
    """

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))
        self.setLevel(level)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def show_notes() -> None:
    """Print the library's warnings (e.g. "Converting the grayscale images ... to RGB")
    once, plainly, instead of in absl's log format or not at all."""
    logger = logging.getLogger(_LOGGER)
    if not any(type(h) is Notes and h.level == logging.WARNING for h in logger.handlers):
        logger.addHandler(Notes())  # then Python's last-resort handler stays silent


@contextmanager
def notes_shown(level: int) -> Iterator[None]:
    """Show hublayer's records from ``level`` up while the block runs, then put the logger back.

    Example:
        >>> with notes_shown(logging.INFO):
        ...     logging.getLogger("hublayer").info("value range (0, 1)")  # doctest: +SKIP
    """
    logger = logging.getLogger(_LOGGER)
    handler = Notes(level)
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
