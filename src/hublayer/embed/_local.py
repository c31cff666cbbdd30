"""``engine="local"``: tf.data on this machine, one input shard after another.

Per shard::

    records.dataset(shard, for_model=layer, shuffle=False) ─┐ zip ─▶ layer ─▶ ShardOutput
    TFRecordDataset(shard).batch ─▶ kept features ──────────┘

The model inputs come from ``records.dataset`` itself, so they are what ``KerasLayer``
gets in training. The kept features are decoded from the same records, in the same
order, by hublayer's Example codec.

Example:
    >>> run_local(job, progress=None)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hublayer import records
from hublayer.embed._job import Job, kept_columns
from hublayer.embed._output import ShardOutput
from hublayer.errors import RecordError

__all__ = ["run_local"]


def _model_fn(job: Job) -> Callable[[Any], Any]:
    import tensorflow as tf

    layer = job.layer()

    def call(inputs: Any) -> Any:
        return layer(inputs, training=False)

    compiled: Callable[[Any], Any] = tf.function(call, reduce_retracing=True)
    return compiled


def _raw_records(tf: Any, source: str, compression: str) -> Any:
    """The serialized records of one input shard: TensorFlow's reader for a local
    file, hublayer's (through fsspec) for a URL, as ``records.dataset`` reads them."""
    if not records.is_url(source):
        return tf.data.TFRecordDataset(source, compression_type=compression)
    return tf.data.Dataset.from_generator(
        lambda: records.read_records(source, compression=compression),
        output_signature=tf.TensorSpec([], tf.string),
    )


def _embed_shard(job: Job, call: Callable[[Any], Any], source: str, target: Path, bar: Any) -> int:
    import tensorflow as tf

    inputs = records.dataset(
        source,
        job.schema,
        batch_size=job.batch_size,
        shuffle=False,
        for_model=job.layer(),
    )
    raw = _raw_records(tf, source, job.schema.compression)
    batches = tf.data.Dataset.zip((inputs, raw.batch(job.batch_size))).prefetch(2)
    with ShardOutput(target, job.format) as out:
        try:
            for features, serialized in batches:
                embeddings = np.asarray(call(features))
                kept = kept_columns(job, serialized.numpy()) if job.keep else {}
                out.write(kept, embeddings)
                bar.update(len(embeddings))
        except tf.errors.DataLossError as error:
            raise RecordError(
                f"Expected valid TFRecord records in {str(source)!r}. Received: "
                f"{error.message}. The shard is corrupt: write it again. Its output "
                f"{target.name!r} was not written; the other shards are kept.",
                file=str(source),
            ) from None
        return out.rows


def run_local(job: Job, bar: Any) -> int:
    """Embed every pending shard of ``job`` here; returns the rows written."""
    call = _model_fn(job)
    rows = 0
    for source, target in job.pending:
        rows += _embed_shard(job, call, source, target, bar)
    return rows
