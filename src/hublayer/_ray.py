"""Ray, imported lazily: one place that finds it, starts or joins a cluster, and says
which extra to install when it is missing.

Example:
    >>> ray = require_ray("engine='ray'")  # doctest: +SKIP
    >>> start_ray(address=None)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

from hublayer.errors import HublayerError, MissingExtraError

__all__ = [
    "ENGINES",
    "check_engine",
    "file_runs",
    "hublayer_error",
    "model_workers",
    "require_ray",
    "start_ray",
]

ENGINES = ("local", "ray")
logger = logging.getLogger("hublayer")


def check_engine(engine: str) -> str:
    """``engine`` if it is ``"local"`` or ``"ray"``; a ``ValueError`` otherwise."""
    if engine not in ENGINES:
        raise ValueError(
            f'Expected engine to be "local" or "ray". Received: engine={engine!r}. '
            'Use engine="ray" to run on Ray (pip install "hublayer[ray]").'
        )
    return engine


def require_ray(what: str, module: str = "ray") -> ModuleType:
    """Import ``module`` (``ray``, ``ray.data``, ``ray.train``...) or name the extra.

    Args:
        what: what needs it, for the message (``"engine='ray'"``).
        module: the module to import.

    Raises:
        MissingExtraError: Ray (or the part asked for) is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"Expected the {module} package for {what}. Received: {error}. Install the extra: "
            'pip install "hublayer[ray]".',
            extra="ray",
            package=module,
        ) from None


def start_ray(address: str | None = None, *, num_cpus: int | None = None) -> ModuleType:
    """Join the cluster at ``address``, or start a local Ray (``None``), unless one is up.

    Returns:
        The ``ray`` module.

    Raises:
        MissingExtraError: Ray is not installed.
    """
    ray = require_ray("engine='ray'")
    if not ray.is_initialized():
        if address is None:
            logger.info("Starting a local Ray.")
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)
        else:
            ray.init(address=address, log_to_driver=True)
    return ray


def model_workers(
    cpus: float, memory: float | None = None, *, cpus_each: int = 2, memory_each: float = 2 << 30
) -> int:
    """The default number of Ray workers that each hold a model (embedding actors, training
    workers): one per ``cpus_each`` CPUs, at most one per ``memory_each`` bytes of
    ``memory``, at least 1. Not one per CPU: every worker loads TensorFlow and the model,
    whose op threads use the cores it finds.

    Example:
        >>> model_workers(16), model_workers(64, memory=8 * 2**30), model_workers(2)
        (8, 4, 1)
    """
    workers = int(cpus) // cpus_each
    if memory:
        workers = min(workers, int(memory // memory_each))
    return max(workers, 1)


def hublayer_error(error: BaseException) -> BaseException:
    """The hublayer error inside a Ray task error (its ``cause`` chain), when there is one,
    else ``error`` itself: what a Ray job re-raises to the caller."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, HublayerError):
            return seen
        cause = getattr(seen, "cause", None)
        seen = cause if isinstance(cause, BaseException) else seen.__cause__
    return error


def file_runs(files: Any) -> list[tuple[str, int, int]]:
    """Contiguous runs of one file name in a batch's file column: ``(file, start, stop)``.

    Example:
        >>> import numpy as np
        >>> file_runs(np.array(["a", "a", "b"]))
        [('a', 0, 2), ('b', 2, 3)]
    """
    import numpy as np

    if not len(files):
        return []
    change = np.flatnonzero(files[1:] != files[:-1]) + 1
    starts = [0, *change.tolist()]
    stops = [*change.tolist(), len(files)]
    return [(str(files[a]), a, b) for a, b in zip(starts, stops, strict=True)]
