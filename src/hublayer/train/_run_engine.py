"""Which engine the training run in progress is on, for ``metrics.json``.

The local recipe reads it; the Ray fine-tuning worker sets it. Its own module, so that
neither imports the other back.

Example:
    >>> run_engine()
    {'engine': 'local', 'workers': 1}
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["on_ray", "run_engine"]

_ENGINE: contextvars.ContextVar[tuple[str, int]] = contextvars.ContextVar(
    "hublayer_train_engine", default=("local", 1)
)


def run_engine() -> dict[str, Any]:
    """``{"engine": ..., "workers": ...}`` of the run in progress, for ``metrics.json``."""
    engine, workers = _ENGINE.get()
    return {"engine": engine, "workers": workers}


@contextmanager
def on_ray(workers: int) -> Iterator[None]:
    """Mark the run in this context as one of ``workers`` Ray workers."""
    token = _ENGINE.set(("ray", workers))
    try:
        yield
    finally:
        _ENGINE.reset(token)
