"""What a result depends on: versions, CPUs, host, date, commit.

Versions come from package metadata, so nothing heavy is imported to read them.

Example:
    >>> info = environment()
    >>> sorted(info["versions"])[:2]
    ['hublayer', 'keras']
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "cpu_count", "environment", "host", "provenance", "today"]

#: Distributions whose versions every result records (the issue asks for these).
PACKAGES: tuple[str, ...] = (
    "hublayer",
    "tensorflow",
    "keras",
    "tf-keras",
    "tensorflow-hub",
    "tfrecord",
    "numpy",
)

ROOT = Path(__file__).resolve().parent.parent


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def host() -> str:
    """A short host name that is safe in a file name."""
    name = socket.gethostname().split(".")[0] or "host"
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)


def today() -> str:
    """The local date as ``YYYY-MM-DD``."""
    return dt.date.today().isoformat()


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def _dirty() -> bool | None:
    """Whether ``src/`` or ``benchmarks/`` differ from the commit (None when unknown)."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "benchmarks"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    # Results files are written by the run itself.
    paths = [line[3:] for line in out.stdout.splitlines()]
    return any(not p.startswith(("benchmarks/results/", "benchmarks/RESULTS.md")) for p in paths)


def provenance() -> dict[str, Any]:
    """The code a figure was measured with: ``{"commit": "abc1234", "dirty": False}``.

    ``dirty`` says whether ``src/`` or ``benchmarks/`` had uncommitted changes.
    """
    return {"commit": _commit(), "dirty": _dirty()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict[str, Any]:
    """Everything the table's header shows, as a JSON-able dict."""
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": host(),
        "cpus": cpu_count(),
        "cpu_model": _cpu_model(),
        "machine_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        **provenance(),
        "versions": {dist: _version(dist) for dist in PACKAGES},
    }
