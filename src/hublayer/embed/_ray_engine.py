"""``engine="ray"``: Ray Data reads, a pool of model actors embeds, the driver writes.

::

    records.ray_dataset(pending shards, columns=keep, + serialized record, + file)
      ─▶ map_batches(_Embedder, compute=ActorPoolStrategy(size=workers))   model loaded
      ─▶ driver: rows routed to their shard's ShardOutput, in order           once per actor

The order of rows is kept (``preserve_order``), so the rows of one input shard arrive
together: when the next shard's rows start, the previous output is complete. It is
moved into place once its rows equal its input's records less those skipped, as the
read tasks reported them to a :class:`records.SkippedRecords` (so the counts reach the
driver whatever ``log_to_driver`` says). An interrupted run keeps every shard finished
before it stopped. The read tasks check the kind of every feature the model or the kept
columns read; the actors run :func:`records.parser`, the same preprocessing as
``records.dataset``.

Example:
    >>> run_ray(job, bar, num_workers=2, address=None)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hublayer import records
from hublayer._ray import file_runs, hublayer_error, model_workers, require_ray, start_ray
from hublayer.embed._job import Job
from hublayer.embed._output import EMBEDDING, ShardOutput
from hublayer.errors import RecordError

__all__ = ["run_ray"]

_RAW = "__hublayer_record"
_FILE = "__hublayer_file"


class _Embedder:
    """A Ray actor: loads the model once, then embeds batches of serialized Examples."""

    def __init__(self, job: Job) -> None:
        import tensorflow as tf

        self.tf = tf
        self.job = job
        layer = job.layer()
        self.parse = job.parser()

        def call(inputs: Any) -> Any:
            return layer(inputs, training=False)

        self.call = tf.function(call, reduce_retracing=True)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        serialized = self.tf.constant([bytes(r) for r in batch.pop(_RAW)])
        embeddings = np.asarray(self.call(self.parse(serialized)), dtype=np.float32)
        batch[EMBEDDING] = embeddings.reshape(len(embeddings), -1)
        return batch


_REPORT_WAIT = 120.0  # seconds a finished read task may take to report its counts


def _finish(job: Job, skipped: records.SkippedRecords, out: ShardOutput, source: str) -> int:
    """Commit one shard against the counts its read tasks reported; returns its skips."""
    counts = skipped.file_counts(source, wait=_REPORT_WAIT)
    if counts is None:
        out.abort()
        raise RecordError(
            f"Expected the read tasks of {source!r} to report how many records they "
            f"read. Received: no complete report in {_REPORT_WAIT:g} s; the shard "
            f"{out.path.name!r} was not written. Run embed again.",
            file=source,
        )
    met, bad = counts
    job.finish(out, source, met, bad)
    return bad


def run_ray(
    job: Job, bar: Any, *, num_workers: int | None, address: str | None
) -> tuple[int, int, int]:
    """Embed every pending shard of ``job`` on Ray; returns (rows, records skipped, workers)."""
    ray = start_ray(address)
    data = require_ray("engine='ray'", "ray.data")
    resources = ray.cluster_resources()
    cpus = float(resources.get("CPU", 1.0))
    # Each actor holds the model: one per 2 CPUs, at most one per 2 GiB, not one per CPU.
    workers = num_workers or model_workers(cpus, resources.get("memory"))
    # Actors that took every CPU would leave none to the read tasks: a deadlock. The
    # share is a scheduling label only; TensorFlow in an actor uses the cores it finds.
    actor_cpus = min(1.0, max(cpus - 1.0, 0.5) / workers)
    targets = {str(source): target for source, target in job.pending}
    skipped = records.SkippedRecords()
    dataset = records.ray_dataset(
        [source for source, _ in job.pending],
        job.schema,
        columns=list(job.keep),
        on_error="skip" if job.on_error == "skip" else "raise",
        raw_column=_RAW,
        file_column=_FILE,
        check_columns=list(job.checked(job.parser())),
        skipped=skipped,
    )
    dataset.context.execution_options.preserve_order = True
    embedded = dataset.map_batches(
        _Embedder,
        fn_constructor_kwargs={"job": job},
        compute=data.ActorPoolStrategy(size=workers),
        batch_size=job.batch_size,
        batch_format="numpy",
        num_cpus=actor_cpus,
    )
    rows = bad = 0
    finished: set[str] = set()
    current: ShardOutput | None = None
    current_file = ""
    try:
        for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
            files = batch.pop(_FILE)
            embeddings = batch.pop(EMBEDDING)
            for file, start, stop in file_runs(files):
                if file != current_file:
                    if current is not None:
                        bad += _finish(job, skipped, current, current_file)
                        finished.add(current_file)
                    current, current_file = ShardOutput(targets[file], job.format), file
                assert current is not None
                kept = {name: batch[name][start:stop] for name in job.keep}
                current.write(kept, embeddings[start:stop])
                rows += stop - start
                bar.update(stop - start)
        if current is not None:
            bad += _finish(job, skipped, current, current_file)
            finished.add(current_file)
    except BaseException as error:
        if current is not None:
            current.abort()
        cause = hublayer_error(error)
        if cause is not error:
            raise cause.with_traceback(None) from None
        raise
    for source, target in job.pending:  # shards with no rows: empty, or every record skipped
        if str(source) not in finished:
            bad += _finish(job, skipped, ShardOutput(Path(target), job.format), str(source))
    return rows, bad, workers
