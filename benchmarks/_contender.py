"""What a contender is: something that does a case's work once per ``measure``.

- :class:`Contender`: the interface (``start``, ``measure``, ``stop``).
- :class:`InProcess`: times a callable in this process. The subprocess kinds are in
  ``_subprocess.py``.
- :class:`NotYet` and :func:`require`: how a contender says that its hublayer feature is
  not built yet, so the table lists it as "not yet" instead of failing the run.

Example:
    >>> c = InProcess("noop", lambda: lambda: {"answer": 42})
    >>> c.start(); s = c.measure(); c.stop()
    >>> s.extras
    {'answer': 42}
"""

from __future__ import annotations

import abc
import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Contender", "InProcess", "NotYet", "Sample", "require"]


class NotYet(Exception):  # noqa: N818 - named after the status it reports
    """Raised by a contender whose hublayer feature is not built yet.

    Args:
        reason: what is missing, e.g. ``"hublayer.records.dataset is not built yet"``.
    """


def require(module: str, *attributes: str) -> Any:
    """Import ``module`` and check it has ``attributes``, or raise :class:`NotYet`.

    Args:
        module: a dotted module name such as ``"hublayer.records"``.
        *attributes: names the contender needs from it.

    Returns:
        The imported module.

    Raises:
        NotYet: when the module does not import or lacks one of the names.
    """
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise NotYet(f"{module} is not built yet ({type(exc).__name__}: {exc})") from exc
    for name in attributes:
        try:
            getattr(mod, name)
        except AttributeError as exc:
            raise NotYet(f"{module}.{name} is not built yet") from exc
    return mod


@dataclass(frozen=True)
class Sample:
    """One timed run of a contender.

    Args:
        seconds: wall time of the run.
        cpu_seconds: CPU time the run used, all threads (and children) together, if known.
        extras: values the run reports besides its time (an accuracy, a byte count...).
    """

    seconds: float
    cpu_seconds: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class Contender(abc.ABC):
    """One way of doing a case's work.

    Args:
        name: shown in the table; ratios refer to contenders by this name.
        role: ``"ours"`` for hublayer, ``"peer"`` for what we compare against.
        items: units of work per run (images, records...), for a throughput column.
        nbytes: bytes of input per run, for an MB/s column.
        expect_failure: the contender is known to fail (e.g. TFSMLayer with Adam); its
            error is recorded as the result rather than as a harness problem.
    """

    def __init__(
        self,
        name: str,
        *,
        role: str = "ours",
        items: int | None = None,
        nbytes: int | None = None,
        expect_failure: bool = False,
    ) -> None:
        self.name = name
        self.role = role
        self.items = items
        self.nbytes = nbytes
        self.expect_failure = expect_failure

    @abc.abstractmethod
    def start(self) -> None:
        """Prepare (load models, open servers). Not timed. May raise :class:`NotYet`."""

    @abc.abstractmethod
    def measure(self) -> Sample:
        """Run the work once and return its timing."""

    def stop(self) -> None:  # noqa: B027 - most contenders hold nothing to release
        """Release what ``start`` acquired. Called once, even after an error."""


def _cpu_seconds() -> float:
    # process_time is precise; os.times adds children (in clock ticks) once waited for.
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


class InProcess(Contender):
    """Times a callable in this process.

    Args:
        name: see :class:`Contender`.
        build: called once by ``start``; returns the operation to time. If the operation
            returns a dict, it becomes the sample's ``extras``.
        inner: how many calls one sample makes; the sample reports the time per call.
        min_seconds: keep calling (``inner`` calls at a time) until the sample has run at
            least this long, then report the time per call; the number of calls is in
            the sample's extras as ``passes``. For operations too short to time alone.
        before: called before each sample, untimed (e.g. to empty a cache folder).
        **kwargs: ``role``, ``items``, ``nbytes``, ``expect_failure``.

    CPU time counts every thread of this process and the children it waited for
    (``curl`` and ``tar`` in the download case).
    """

    def __init__(
        self,
        name: str,
        build: Callable[[], Callable[[], Any]],
        *,
        inner: int = 1,
        min_seconds: float = 0.0,
        before: Callable[[], object] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        self._build = build
        self._inner = inner
        self._min_seconds = min_seconds
        self._before = before
        self._op: Callable[[], Any] | None = None

    def start(self) -> None:
        self._op = self._build()

    def measure(self) -> Sample:
        if self._op is None:
            raise RuntimeError(f"{self.name}: measure() called before start()")
        op = self._op
        if self._before is not None:
            self._before()
        out: Any = None
        calls = 0
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        while True:
            for _ in range(self._inner):
                out = op()
            calls += self._inner
            if time.perf_counter() - t0 >= self._min_seconds:
                break
        wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
        extras = dict(out) if isinstance(out, dict) else {}
        if self._min_seconds:
            extras["passes"] = calls
        return Sample(wall / calls, cpu / calls, extras)

    def stop(self) -> None:
        self._op = None
