"""The first resolve in a fresh process: ``python -m benchmarks.peers._first_call WHICH
HANDLE CACHE``.

WHICH is ``hublayer`` or ``hub`` (``tensorflow_hub``, with ``TF_USE_LEGACY_KERAS=1``).
The process imports the resolver (untimed), then times one resolve of HANDLE, whose
entry is already in CACHE. No in-process memo has seen the handle yet, as in a new
program or a CLI call; the repeat figure (the same call again, in a warm process) is the
resolve case's other pair. Prints :data:`~benchmarks._subprocess.FIRST_OUTPUT` and
``{"seconds": ..., "cpu": ...}`` for :class:`~benchmarks._subprocess.ColdProcess`
(``until="reported"``). Exit status 3 means the feature is not built yet.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["main"]


def _resolver(which: str, handle: str, cache: str) -> Callable[[], Any]:
    if which == "hublayer":
        try:
            handles = importlib.import_module("hublayer.handles")
            resolve = handles.resolve
        except (ImportError, AttributeError) as exc:
            print(f"hublayer.handles.resolve is not built yet: {exc}", file=sys.stderr)
            raise SystemExit(3) from exc
        return lambda: resolve(handle, cache_dir=cache)
    from benchmarks.peers._legacy import import_hub

    os.environ["TFHUB_CACHE_DIR"] = cache
    hub = import_hub()
    return lambda: hub.resolve(handle)


def main() -> None:
    """Time the first resolve after the imports; print the marker line."""
    from benchmarks._subprocess import FIRST_OUTPUT

    which, handle, cache = sys.argv[1:4]
    call = _resolver(which, handle, cache)
    cpu0, t0 = time.process_time(), time.perf_counter()
    call()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(FIRST_OUTPUT + " " + json.dumps({"seconds": seconds, "cpu": cpu}), flush=True)


if __name__ == "__main__":
    main()
