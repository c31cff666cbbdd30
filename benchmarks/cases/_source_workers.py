"""Sequential TFRecord readers of other packages, in a worker process without TensorFlow.

The ``tfrecord`` package registers its own ``example.proto`` and cannot share a process
with TensorFlow; grain's ``TFRecordIterDataset`` reads raw records only, so its records
are parsed by ``hublayer.records.decode_example``. Each run reads every record of the
files in order and reports whether TensorFlow got imported after all (it must not).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks._harness import require

__all__ = ["parse_grain", "parse_tfrecord_package"]


def _report(n: int) -> dict[str, Any]:
    return {"records": n, "tensorflow_loaded": "tensorflow" in sys.modules}


def parse_tfrecord_package(files: Sequence[str], description: dict[str, str]) -> Callable[[], Any]:
    """Parse every record with ``tfrecord.tfrecord_loader`` (it checks no CRC)."""
    from tfrecord.reader import tfrecord_loader

    def run() -> dict[str, Any]:
        n = 0
        for path in files:
            for _ in tfrecord_loader(path, None, description):
                n += 1
        return _report(n)

    return run


def parse_grain(files: Sequence[str]) -> Callable[[], Any]:
    """Read every record with grain's ``TFRecordIterDataset`` (no CRC), one file after
    another, and parse it with ``hublayer.records.decode_example``."""
    records = require("hublayer.records", "decode_example")
    from grain.experimental import TFRecordIterDataset

    def run() -> dict[str, Any]:
        n = 0
        decode = records.decode_example
        for path in files:
            for record in TFRecordIterDataset(path):
                decode(record)
                n += 1
        return _report(n)

    return run
