"""Record readers that run in a worker process without TensorFlow (framing case).

The ``tfrecord`` package registers its own copy of ``example.proto``, which clashes with
TensorFlow's in one process ("duplicate symbol 'tensorflow.BytesList'"); and "reading
without TF" should be measured without TF loaded. So these targets run in a
:class:`~benchmarks._subprocess.Worker`, and each run reports whether TensorFlow got
imported after all.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks._harness import require

__all__ = ["count_hublayer", "count_tfrecord_package"]


def _report(n: int) -> dict[str, Any]:
    return {"records": n, "tensorflow_loaded": "tensorflow" in sys.modules}


def count_tfrecord_package(files: Sequence[str]) -> Callable[[], Any]:
    """Count records with ``tfrecord.reader.tfrecord_iterator`` (it checks no CRC)."""
    from tfrecord.reader import tfrecord_iterator

    def run() -> dict[str, Any]:
        n = 0
        for path in files:
            for _ in tfrecord_iterator(path):
                n += 1
        return _report(n)

    return run


def count_hublayer(files: Sequence[str]) -> Callable[[], Any]:
    """Count records with ``hublayer.records.read_records``, checking every CRC."""
    records = require("hublayer.records", "read_records")

    def run() -> dict[str, Any]:
        n = 0
        for _ in records.read_records(files, verify=True):
            n += 1
        return _report(n)

    return run
