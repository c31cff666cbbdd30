"""Case 5, records (continued): ``records inspect`` on 1 GB of shards.

``records.inspect()`` samples about 1,000 records, so its time is held to an absolute
target (a few seconds). Against a full read it is not a speed-up of the same work: equal
work is ``records.inspect(sample=None)``, which reads and decodes every record, beside a
tf.data full count, which only frames them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from benchmarks._data import Records, blob_records
from benchmarks._harness import CaseResult, InProcess, NotYet, Plan, Ratio, require
from benchmarks._subprocess import ColdProcess
from benchmarks._suites import Suite

__all__ = ["count_tf_data", "inspect"]


def count_tf_data(records: Records) -> Callable[[], Any]:
    """Count with tf.data: batch the raw records and add up the batch sizes (CRCs checked)."""
    import tensorflow as tf

    ds = tf.data.TFRecordDataset(list(records.files), buffer_size=8 << 20).batch(8192)
    return lambda: {"records": sum(int(b.shape[0]) for b in ds)}


def _inspect_api(records: Records, sample: int | None = 1000) -> Callable[[], Any]:
    records_api = require("hublayer.records", "inspect")
    files = list(records.files)

    def op() -> dict[str, Any]:
        schema = records_api.inspect(files, sample=sample)
        return {"records read": schema.records}

    return op


def _inspect_check() -> None:
    require("hublayer.records", "inspect")
    group = require("hublayer.cli._records", "records").records
    if "inspect" not in getattr(group, "commands", {}):
        raise NotYet("the `hublayer records inspect` command is not built yet")


FULL = "records.inspect(sample=None)"
COUNT = "tf.data full count"


def _inspect_note(result: CaseResult) -> str | None:
    sampled, full = result.contender("records.inspect()"), result.contender(FULL)
    if sampled is None or "records read" not in sampled.extras:
        return None
    text = (
        f"records.inspect() reads a sample: {sampled.extras['records read']:,} records in this "
        "run. Its time is against the target; its ratio to a full read is not a speed-up of "
        "the same work, so it has none."
    )
    if full is not None and "records read" in full.extras:
        text += (
            f" Equal work: {FULL} reads all {full.extras['records read']:,} records and "
            f"decodes each Example, against {COUNT}, which only frames them."
        )
    return text


def inspect(suite: Suite) -> Plan:
    data = blob_records(suite.inspect_mb)
    files = list(data.files)
    return Plan(
        [
            InProcess("records.inspect()", lambda: _inspect_api(data), nbytes=data.nbytes),
            InProcess(FULL, lambda: _inspect_api(data, None), items=data.count, nbytes=data.nbytes),
            ColdProcess(
                "hublayer records inspect (CLI, cold)",
                [sys.executable, "-m", "hublayer", "records", "inspect", *files],
                precheck=_inspect_check,
                until="exit",
            ),
            InProcess(
                COUNT,
                lambda: count_tf_data(data),
                role="peer",
                items=data.count,
                nbytes=data.nbytes,
            ),
        ],
        [
            Ratio("records.inspect()", "", "seconds", "<= 5"),
            Ratio("hublayer records inspect (CLI, cold)", "", "seconds", "<= 5"),
            Ratio(FULL, COUNT, "speed"),
        ],
        warmup=1,
        reps=suite.pick(5, 5),
        notes=[
            f"{data.nbytes / 2**30:.2f} GiB of shards ({len(files)} files, {data.count:,} "
            "examples of about 64 KiB). Target: a few seconds at most, by sampling.",
            _inspect_note,
        ],
    )
