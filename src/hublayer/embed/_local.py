"""``engine="local"``: on this machine, one input shard after another.

Per shard::

    records.Reader(shard, on_error=) ─▶ kinds checked ─▶ batch ─┬─▶ parser ─▶ layer ─┐
                                                               └─▶ kept features ───┴▶ ShardOutput

The model inputs come from :func:`records.parser`, the same preprocessing as
``records.dataset(..., for_model=)`` and as the Ray engine's actors, so both engines
write the same rows. Reading with hublayer's reader gives each record's offset, so a
bad record (a CRC, or a value of another kind than the schema's) is named, or skipped
and counted, exactly as ``records.ray_dataset`` does it.

Example:
    >>> run_local(job, bar)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hublayer import records
from hublayer.embed._job import Job, kept_columns, kind_error
from hublayer.embed._output import ShardOutput
from hublayer.errors import RecordError

__all__ = ["run_local"]

logger = logging.getLogger("hublayer")


def _model_fn(job: Job, truncation: Any = None) -> Callable[[Any], Any]:
    import tensorflow as tf

    layer = job.layer()
    parse = job.parser()
    if truncation is not None:
        return _chain_fn(layer, parse, truncation)

    def call(serialized: Any) -> Any:
        return layer(parse(serialized), training=False)

    compiled: Callable[[Any], Any] = tf.function(call, reduce_retracing=True)
    return compiled


def _chain_fn(chain: Any, parse: Any, truncation: Any) -> Callable[[Any], Any]:
    """A text chain's call that also counts the sentences filling its sequence."""
    import tensorflow as tf

    def both(serialized: Any) -> Any:
        tokens = chain.tokenize(parse(serialized))
        return chain.encode(tokens, training=False), truncation.count(tokens)

    compiled = tf.function(both, reduce_retracing=True)

    def call(serialized: Any) -> Any:
        output, filled = compiled(serialized)
        truncation.add(filled, int(output.shape[0]))
        return output

    return call


class _Counted:
    """The good records of one shard, in batches; counts what it met and skipped."""

    def __init__(self, job: Job, source: str, kinds: dict[str, str]) -> None:
        self.job = job
        self.source = source
        self.kinds = kinds
        self.met = 0
        self.skipped = 0
        self.first_bad: RecordError | None = None

    def batches(self) -> Iterator[list[bytes]]:
        job = self.job
        batch: list[bytes] = []
        with records.Reader(
            self.source,
            compression=job.schema.compression,
            on_error="skip" if job.on_error == "skip" else "raise",
        ) as reader:
            for data in reader:
                index = reader.count + reader.skipped - 1
                offset = reader.offset - len(data) - 16
                bad = kind_error(
                    self.source, records.decode_example(data), self.kinds, index, offset
                )
                if bad is not None:
                    if job.on_error != "skip":
                        raise bad
                    self.skipped += 1
                    self.first_bad = self.first_bad or bad
                    continue
                batch.append(data)
                if len(batch) >= job.batch_size:
                    yield batch
                    batch = []
            if batch:
                yield batch
            self.met = reader.count + reader.skipped
            self.skipped += reader.skipped
            if reader.errors:
                self.first_bad = self.first_bad or reader.errors[0]


def _embed_shard(
    job: Job, call: Callable[[Any], Any], kinds: dict[str, str], source: str, target: Path, bar: Any
) -> tuple[int, int]:
    import tensorflow as tf

    counted = _Counted(job, source, kinds)
    with ShardOutput(target, job.format) as out:
        for serialized in counted.batches():
            embeddings = np.asarray(call(tf.constant(serialized)))
            kept = kept_columns(job, serialized) if job.keep else {}
            out.write(kept, embeddings)
            bar.update(len(embeddings))
        if counted.first_bad is not None:
            logger.warning(
                "Skipped %d bad record(s) in %s; the first: %s",
                counted.skipped,
                source,
                counted.first_bad,
            )
        job.finish(out, source, counted.met, counted.skipped)
    return out.rows, counted.skipped


def run_local(job: Job, bar: Any) -> tuple[int, int]:
    """Embed every pending shard of ``job`` here; returns (rows written, records skipped)."""
    truncation = None
    if job.preprocess_path is not None:
        from hublayer.layers import Truncation

        truncation = Truncation(job.layer())
    call = _model_fn(job, truncation)
    kinds = job.checked(job.parser())
    rows = skipped = 0
    for source, target in job.pending:
        done, bad = _embed_shard(job, call, kinds, source, target, bar)
        rows, skipped = rows + done, skipped + bad
    if truncation is not None:
        truncation.report("embed")
    return rows, skipped
