"""Case ``source`` (#23): random access to TFRecords with ``records.Source``, against
tf.data's fastest sequential batched parse of the same files, in the same run.

Every contender reads and parses every record of the tabular shards (``x`` float[10],
``n`` and ``label`` int64) once per run:

- ``records.Source[i]``: one record at a time, in a random order (a permutation drawn
  once), both CRCs of every record checked, decoded to a dict of numpy arrays;
- ``records.Source.__getitems__``: the same order, 256 records a call (what PyTorch's
  DataLoader and grain's batched reads call);
- plain tf.data: ``TFRecordDataset(files).batch(1024).map(parse_example)``, sequential
  (the fastest tf.data pipeline we know, from the ``tabular`` case);
- the ``tfrecord`` package's ``tfrecord_loader``, sequential, no CRC, in its own process
  (it cannot share one with TensorFlow);
- grain's ``TFRecordIterDataset``, sequential, no CRC, each record parsed by
  ``decode_example`` (grain has no Example parser), in its own process.

Building the Source (reading the index files) and the permutation is not timed; the
indexes are written once, before the runs. The table's CPU column gives CPU µs per row
(process CPU time of a run over its rows; a worker's own process for the two peers that
run in one).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from benchmarks._data import Records, tabular_records
from benchmarks._harness import CaseResult, CaseSpec, InProcess, Plan, Ratio, require
from benchmarks._subprocess import Worker
from benchmarks._suites import Suite
from benchmarks.cases._records import PLAIN, TABULAR_BATCH, _plain_tabular

__all__ = ["CASES"]

ONE = "records.Source[i], random order"
MANY = "records.Source.__getitems__(256), random order"
PACKAGE = "tfrecord package, sequential (no CRC)"
GRAIN = "grain TFRecordIterDataset + decode_example (no CRC)"
BATCH = 256
_DESCRIPTION = {"x": "float", "n": "int", "label": "int"}


def _order(count: int) -> list[int]:
    import numpy as np

    return np.random.default_rng(0).permutation(count).tolist()  # type: ignore[no-any-return]


def _one_by_one(data: Records) -> Callable[[], Any]:
    records = require("hublayer.records", "Source")
    src = records.Source(list(data.files))
    order = _order(len(src))

    def run() -> dict[str, Any]:
        n = 0
        for i in order:
            src[i]
            n += 1
        return {"records": n}

    return run


def _batched(data: Records) -> Callable[[], Any]:
    records = require("hublayer.records", "Source")
    src = records.Source(list(data.files))
    order = _order(len(src))
    chunks = [order[k : k + BATCH] for k in range(0, len(order), BATCH)]

    def run() -> dict[str, Any]:
        n = 0
        for chunk in chunks:
            n += len(src.__getitems__(chunk))
        return {"records": n}

    return run


def _same_records(result: CaseResult) -> str | None:
    counts = {
        c.name: c.extras.get("records")
        for c in result.contenders
        if c.stats is not None and "records" in c.extras
    }
    if not counts:
        return None
    loaded = [
        c.name for c in result.contenders if c.extras.get("tensorflow_loaded") in (True, "True")
    ]
    seen = ", ".join(f"{name} {n:,}" for name, n in counts.items())
    tf_note = (
        " TensorFlow was imported in the worker processes: " + ", ".join(loaded) + "."
        if loaded
        else " The worker processes never imported TensorFlow."
    )
    return f"Records parsed per run, computed in this run: {seen}.{tf_note}"


def source(suite: Suite) -> Plan:
    data = tabular_records(suite.tabular)
    require("hublayer.records", "index").index(list(data.files))  # not timed
    kw: dict[str, Any] = {"items": data.count, "nbytes": data.nbytes}
    files = {"files": list(data.files)}
    return Plan(
        [
            InProcess(PLAIN, lambda: _plain_tabular(data), role="peer", **kw),
            InProcess(ONE, lambda: _one_by_one(data), **kw),
            InProcess(MANY, lambda: _batched(data), **kw),
            Worker(
                PACKAGE,
                "benchmarks.cases._source_workers:parse_tfrecord_package",
                {**files, "description": _DESCRIPTION},
                role="peer",
                **kw,
            ),
            Worker(GRAIN, "benchmarks.cases._source_workers:parse_grain", files, role="peer", **kw),
        ],
        [
            Ratio(ONE, PLAIN, "speed", ">= 0.3"),
            Ratio(MANY, PLAIN, "speed", ">= 0.5"),
            Ratio(MANY, PACKAGE, "speed"),
            Ratio(MANY, GRAIN, "speed"),
        ],
        warmup=1,
        reps=suite.pick(5, 7),
        min_reps=5,
        budget_s=suite.pick(240.0, math.inf),
        notes=[
            f"{data.count:,} tabular examples (x float[10], n int64, label int64), "
            f"{data.nbytes / 1e6:.0f} MB in {len(data.files)} shards, the files of the "
            f"tabular case. {PLAIN}: TFRecordDataset(files) → batch({TABULAR_BATCH}) → "
            "map(parse_example), sequential. records.Source reads in a random order (one "
            "permutation, drawn once), checks the length CRC and the data CRC of every "
            "record, and decodes each to a dict of numpy arrays; its indexes are written "
            "before the runs. The tfrecord package and grain read in file order and check "
            "no CRC.",
            _same_records,
        ],
    )


CASES = (
    CaseSpec(
        "source",
        "records.Source: random-order parsed reads against tf.data's sequential parse",
        source,
        timeout_s=(600.0, 1800.0),
        issue="#23",
    ),
)
