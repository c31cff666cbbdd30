"""The child side of :class:`benchmarks._subprocess.Worker` (run as ``python -m``).

It reads one JSON request per line from stdin and answers on a private copy of stdout;
fd 1 itself is pointed at stderr first, so library prints and logs cannot break the
protocol. See ``_subprocess.py`` for the messages.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from benchmarks._harness import NotYet

__all__ = ["main", "noop"]


def noop(**_: Any) -> Callable[[], None]:
    """A target that does nothing, for tests and the doctest in ``_subprocess``."""
    return lambda: None


def _load(target: str) -> Callable[..., Callable[[], Any]]:
    module, _, attribute = target.partition(":")
    fn: Callable[..., Callable[[], Any]] = getattr(importlib.import_module(module), attribute)
    return fn


def _reply(out: TextIO, **message: Any) -> None:
    out.write(json.dumps(message, default=str) + "\n")
    out.flush()


def _error(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc}".splitlines() or [type(exc).__name__])[0][:400]


def main() -> None:
    """Serve requests until ``stop`` or end of input."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    op: Callable[[], Any] | None = None
    inner = 1
    for line in sys.stdin:
        request = json.loads(line)
        kind = request.get("op")
        if kind == "stop":
            break
        try:
            if kind == "start":
                inner = int(request.get("inner", 1))
                op = _load(request["target"])(**request.get("params", {}))
                _reply(out, ok=True)
            elif kind == "measure":
                if op is None:
                    raise RuntimeError("measure before start")
                result: Any = None
                cpu0, t0 = time.process_time(), time.perf_counter()
                for _ in range(inner):
                    result = op()
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                extras = result if isinstance(result, dict) else {}
                _reply(out, ok=True, seconds=wall / inner, cpu=cpu / inner, extras=extras)
            else:
                raise ValueError(f"unknown op {kind!r}")
        except NotYet as exc:
            _reply(out, ok=False, not_yet=True, error=str(exc))
        except Exception as exc:
            _reply(out, ok=False, not_yet=False, error=_error(exc))
    out.close()


if __name__ == "__main__":
    main()
