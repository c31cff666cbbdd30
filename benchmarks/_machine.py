"""How much of the machine other processes used while a case ran.

The load average alone cannot tell a busy machine from a busy case: a case whose
threads keep three runnable on two cores shows a load of 3 with nothing else running.
So a case also measures the CPU time spent on its cores by everyone (``/proc/stat``,
the lines of the CPUs this process may run on) and subtracts its own (this process and
the children it waited for: workers, cold processes, the loopback server). What is left,
over the wall time, is ``other_cores``: how many cores other work took on average.

A case is **busy** when other work took more than :data:`BUSY_SHARE` of the usable
cores (at least 0.1 of a core). Where ``/proc/stat`` is unreadable (not Linux), it falls
back on the load average: busy when the load exceeded the usable cores.

Example:
    >>> meter = Meter()
    >>> other = meter.other_cores()
    >>> other is None or other >= 0.0
    True
    >>> is_busy(0.05, 1.0, 2), is_busy(0.5, 1.0, 2), is_busy(None, 3.0, 2)
    (False, True, True)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["BUSY_SHARE", "Meter", "busy_ticks", "is_busy"]

#: Share of the usable cores other work may take before a case is flagged busy.
BUSY_SHARE = 0.1
_STAT = Path("/proc/stat")


def _cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return set(range(os.cpu_count() or 1))


def busy_ticks(cpus: set[int] | None = None, stat: Path = _STAT) -> int | None:
    """Non-idle clock ticks of ``cpus`` (default: this process's) since boot, or None.

    Busy is user + nice + system + irq + softirq + steal; idle and iowait are not.
    """
    wanted = _cpus() if cpus is None else cpus
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    total, seen = 0, 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in wanted:
            continue
        fields = [int(v) for v in rest.split()]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        total += user + nice + system + irq + softirq + steal
        seen += 1
    return total if seen else None


def _now() -> float:
    return time.perf_counter()


def _ticks_per_second() -> int:
    return int(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Meter:
    """Started on creation; :meth:`other_cores` reads how many cores others used since."""

    def __init__(self) -> None:
        self._hz = _ticks_per_second()
        self._ticks = busy_ticks()
        self._own = _own_cpu()
        self._t0 = _now()

    def other_cores(self) -> float | None:
        """Cores used by other processes on average since the start; None if unknown.

        Call it after the case's children have been waited for, so their CPU counts as
        the case's own.
        """
        ticks = busy_ticks()
        wall = _now() - self._t0
        if ticks is None or self._ticks is None or wall <= 0:
            return None
        everyone = (ticks - self._ticks) / self._hz
        own = _own_cpu() - self._own
        return max(0.0, (everyone - own) / wall)


def is_busy(other_cores: float | None, peak_load: float, cpus: int) -> bool:
    """Whether other work took enough of the machine to flag the case (see above)."""
    if other_cores is None:
        return peak_load > cpus
    return other_cores > max(0.1, BUSY_SHARE * cpus)
