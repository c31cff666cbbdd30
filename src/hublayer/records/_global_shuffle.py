"""``records.dataset(..., shuffle="global")``: one exact shuffle of every record per epoch.

A shuffle buffer mixes records only within its window (about 64 MB of them), so the
order still follows the files. With the files indexed (:func:`~hublayer.records.index`),
every record has a number, and the order becomes a pure function of ``(seed, epoch)``::

    epoch e:   permutation_e = numpy.random.default_rng([seed, e]).permutation(records)
    stream:    permutation_0 ++ permutation_1 ++ ...       (``repeat`` epochs; one without)
    shard:     worker k of n takes permutation_e[k::n]      (disjoint, and all of them)
    batches:   consecutive groups of ``batch_size`` records of the stream

So step ``s`` always holds the same records, and a run that stopped after ``s``
batches resumes exactly with ``start_step=s``: the stream skips ``s * batch_size``
records, without reading them. Records are read in chunks by a raw
:class:`~hublayer.records.Source` inside tf.data (``numpy_function``), so both CRCs
of every record are checked, as with the other readers.

Example:
    >>> [c.tolist() for c in positions(10, seed=1, epochs=2, shard=None, skip=8, chunk=4)]
    [[6, 3], [7, 2, 4, 6], [1, 0, 3, 5], [9, 8]]
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import numpy as np

from hublayer.records._source import Source

__all__ = ["check_global", "global_records", "positions"]

_CHUNK = 1024  # records read per call into Python


def check_global(shuffle: Any, seed: int | None, start_step: int, cache: Any) -> int:
    """Check the arguments of a global shuffle; return its seed (drawn when None).

    Raises:
        ValueError: ``start_step`` without ``shuffle="global"``, or without a seed, or
            not an int >= 0; ``cache`` with ``shuffle="global"``.
    """
    if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
        raise ValueError(f"Expected start_step to be an int >= 0. Received: {start_step!r}.")
    if shuffle != "global":
        raise ValueError(
            'Expected shuffle="global" with start_step: only a global shuffle has a '
            f"fixed order to resume in. Received: shuffle={shuffle!r}, "
            f"start_step={start_step}."
        )
    if start_step and seed is None:
        raise ValueError(
            "Expected the seed of the run to resume. Received: start_step="
            f"{start_step} with seed=None. Pass the seed the run used (and the same "
            "batch_size, repeat and shard)."
        )
    if cache:
        raise ValueError(
            'Expected no cache with shuffle="global": the records are read through the '
            f"index in a new order each epoch. Received: cache={cache!r}. Drop cache=."
        )
    return secrets.randbits(63) if seed is None else int(seed)


def _epoch(count: int, seed: int, epoch: int, shard: tuple[int, int] | None) -> np.ndarray:
    order = np.random.default_rng([seed, epoch]).permutation(count)
    return order if shard is None else order[shard[1] :: shard[0]]


def positions(
    count: int,
    *,
    seed: int,
    epochs: int | None,
    shard: tuple[int, int] | None,
    skip: int,
    chunk: int = _CHUNK,
) -> Iterator[np.ndarray]:
    """The record numbers of the stream, after ``skip`` of them, in int64 chunks.

    Args:
        count: records in the files.
        seed: the shuffle's seed.
        epochs: passes over the records; None for no end.
        shard: ``(num_shards, index)``, or None.
        skip: records of the stream to leave out at its start.
        chunk: the most positions a chunk holds.

    Example:
        >>> [c.tolist() for c in positions(4, seed=0, epochs=1, shard=None, skip=1, chunk=2)]
        [[0, 1], [3]]
    """
    per_epoch = count if shard is None else len(range(shard[1], count, shard[0]))
    if not per_epoch:
        return
    epoch, at = divmod(skip, per_epoch)
    while epochs is None or epoch < epochs:
        order = _epoch(count, seed, epoch, shard)
        for start in range(at, len(order), chunk):
            yield order[start : start + chunk]
        epoch, at = epoch + 1, 0


def global_records(
    tf: Any,
    paths: list[str],
    *,
    seed: int,
    epochs: int | None,
    shard: tuple[int, int] | None,
    skip: int,
) -> tuple[Any, int | None]:
    """A tf.data dataset of serialized records in the global order, and how many it
    yields (None when it repeats without end).

    Raises:
        RecordError: as for :func:`~hublayer.records.index` (remote or compressed
            files, broken framing); while iterating, a record that fails a CRC.
    """
    source = Source(paths, raw=True)
    count = len(source)
    per_epoch = count if shard is None else len(range(shard[1], count, shard[0]))
    total = None if epochs is None else max(per_epoch * epochs - skip, 0)

    def chunks() -> Iterator[np.ndarray]:
        yield from positions(count, seed=seed, epochs=epochs, shard=shard, skip=skip)

    def read(at: np.ndarray) -> np.ndarray:
        out = np.empty(len(at), dtype=object)
        out[:] = source.__getitems__(at.tolist())
        return out

    def read_chunk(at: Any) -> Any:
        records = tf.numpy_function(read, [at], tf.string, stateful=False)
        records.set_shape([None])
        return records

    spec = tf.TensorSpec([None], tf.int64)
    numbers = tf.data.Dataset.from_generator(chunks, output_signature=spec)
    records = numbers.map(tf.autograph.experimental.do_not_convert(read_chunk)).unbatch()
    return records, total
