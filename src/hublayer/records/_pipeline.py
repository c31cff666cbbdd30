"""``records.dataset``: TFRecord files to ``(features, label)`` batches for ``model.fit``.

The pipeline is a pure function of (files, schema, options, seed)::

    files ─shuffle─▶ interleave(TFRecordDataset, 4 files, in turn) ─▶ [shard] ─▶ [cache]
          ─▶ shuffle(buffer) ─▶ [repeat]
      or, with shuffle="global":  index ─▶ permutation(seed, epoch) per epoch ─▶ [shard]
          ─▶ [skip start_step batches] ─▶ raw reads (see ._global_shuffle)
          ─▶ no images:  batch ─▶ map(parse_example)                       ─▶ prefetch
          ─▶ images:     map(parse + decode + resize + scale) ─▶ batch      ─▶ prefetch

Choices, made by timing the alternatives while the pipeline was written (those timings
were not kept in a run file; the figures that back the result are the ``tabular`` and
``images`` cases of ``benchmarks/RESULTS.md``, against plain tf.data and tf.data best
practice):

- Interleave runs sequentially: with ``num_parallel_calls=AUTOTUNE`` it fought the parse
  step for the same cores and was slower. Without shuffling, ``TFRecordDataset(files)``
  reads the files in order, which costs less CPU per example than ``flat_map``.
- Batching before ``parse_example`` is much faster than ``map(parse_single_example)``.
- For images the decode dominates; it runs per image in a parallel map (the decode
  and its choices are in :mod:`._parse`).
- Maps, batching and prefetch use AUTOTUNE; order is free (``deterministic=False``)
  unless a seed is given or shuffling is off.
- Tabular pipelines run with tf.data's autotuning model off (AUTOTUNE then means one
  parallel call per core and a prefetch buffer that grows when the consumer waits).
  At a tabular pipeline's small CPU cost per example (the ``tabular`` case's "CPU
  µs/item" column), the autotuner's own bookkeeping was the gap to the fastest pipeline
  a user can write, ``TFRecordDataset(files).batch(n).map(parse_example)``. Splitting
  the label off the features costs little next to that; the peers do not split it.
  Image pipelines keep the autotuner: a decode costs orders of magnitude more, and it
  sizes the decode's parallelism.
- Remote files (``gs://``, ``s3://``, any fsspec URL) are read by hublayer's own reader
  through fsspec, in a ``from_generator`` per file, so every URL that ``expand_files``
  lists can be read, the same way in every entry point, CRCs checked.
- When the record count is known exactly (the schema read every record of these very
  files), the dataset asserts its cardinality, so ``len()`` works and Keras knows the
  steps of an epoch instead of warning "Your input ran out of data" after the first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from hublayer.errors import SchemaError
from hublayer.records._files import Files, expand_files, file_size, is_url
from hublayer.records._framing import detect_compression
from hublayer.records._global_shuffle import check_global, global_records
from hublayer.records._inspect import inspect
from hublayer.records._match import TensorPlan, plan
from hublayer.records._options import ImageOptions
from hublayer.records._parse import build_parse
from hublayer.records._reader import Reader
from hublayer.records._schema import Schema
from hublayer.records._text_preprocess import text_preprocess

__all__ = ["dataset"]

_SHUFFLE_BYTES = 64 << 20  # a shuffle buffer holds about this many bytes of records
_SHUFFLE_MIN, _SHUFFLE_MAX = 256, 10_000
_CYCLE = 4


def _compression(paths: list[Any]) -> str:
    found = {detect_compression(p) for p in paths}
    if len(found) > 1:
        raise SchemaError(
            "Expected every file to use the same compression. Received: "
            f"{sorted(c or 'none' for c in found)}. Pass the files of each kind separately."
        )
    return found.pop()


def _stream(tf: Any, name: Any, compression: str) -> Any:
    """The records of one remote file, read by :class:`Reader` through fsspec (so any
    fsspec URL works, and every CRC is checked) inside tf.data."""

    def records(path: bytes) -> Any:
        with Reader(path.decode(), compression=compression) as reader:
            yield from reader

    return tf.data.Dataset.from_generator(
        records, output_signature=tf.TensorSpec([], tf.string), args=(name,)
    )


def _file_records(
    tf: Any,
    names: list[str],
    compression: str,
    shuffle: bool | int,
    seed: int | None,
    shards: tuple[int, int] | None,
    by_file: bool,
) -> Any:
    """The records of the files, files shuffled and interleaved when ``shuffle``."""
    remote = any(is_url(n) for n in names)

    def read(name: Any) -> Any:
        if remote:
            return _stream(tf, name, compression)
        return tf.data.TFRecordDataset(name, compression_type=compression)

    if remote:  # a Python generator inside: AutoGraph has nothing to convert
        read = tf.autograph.experimental.do_not_convert(read)

    source = tf.data.Dataset.from_tensor_slices(names)
    if shards is not None and by_file:
        source = source.shard(*shards)
    if shuffle:
        source = source.shuffle(len(names), seed=seed, reshuffle_each_iteration=True)
        return source.interleave(read, cycle_length=min(_CYCLE, len(names)), block_length=1)
    if remote:
        return source.flat_map(read)
    # file order; the reader op walks the files itself, cheaper than flat_map
    return tf.data.TFRecordDataset(source, compression_type=compression)


def _shuffle_buffer(shuffle: bool | int, schema: Schema, paths: list[Any]) -> int:
    if not isinstance(shuffle, bool):
        return int(shuffle)
    count = schema.total_records or schema.estimated_records or schema.records
    mean = sum(file_size(p) for p in paths) / max(count, 1)
    return int(min(max(_SHUFFLE_BYTES // max(mean, 1.0), _SHUFFLE_MIN), _SHUFFLE_MAX, count))


def _shard(shard: Any) -> tuple[int, int] | None:
    if shard is None:
        return None
    if hasattr(shard, "num_input_pipelines"):  # tf.distribute.InputContext
        shard = (shard.num_input_pipelines, shard.input_pipeline_id)
    try:
        count, index = (int(v) for v in shard)
    except (TypeError, ValueError):
        count, index = 0, -1
    if not 0 <= index < count:
        raise ValueError(
            "Expected shard=(num_shards, index) with 0 <= index < num_shards, or a "
            f"tf.distribute.InputContext. Received: shard={shard!r}."
        )
    return count, index


def _batches(
    schema: Schema,
    names: list[str],
    shards: tuple[int, int] | None,
    by_file: bool,
    repeat: bool | int,
    batch_size: int,
) -> int | None:
    """How many batches one pass yields, when that is known for certain; else None.

    Known when the schema counted every record of exactly these files, and no shard
    takes whole files (their record counts are not known one by one).
    """
    total = schema.total_records
    if total is None or repeat is True or tuple(schema.files) != tuple(names) or by_file:
        return None
    if shards is not None:
        total = len(range(shards[1], total, shards[0]))
    total *= int(repeat) if repeat else 1
    return -(-total // batch_size)


def _check(batch_size: int, shuffle: bool | int | str, repeat: bool | int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Expected batch_size to be a positive int. Received: {batch_size!r}.")
    if shuffle == "global":
        pass
    elif not isinstance(shuffle, bool) and (not isinstance(shuffle, int) or shuffle < 1):
        raise ValueError(
            'Expected shuffle to be True, False, "global" or a buffer size >= 1. '
            f"Received: {shuffle!r}."
        )
    if not isinstance(repeat, bool) and (not isinstance(repeat, int) or repeat < 1):
        raise ValueError(
            f"Expected repeat to be True, False or a count >= 1. Received: {repeat!r}."
        )


def dataset(
    files: Files,
    schema: Schema | str | os.PathLike[str] | None = None,
    *,
    batch_size: int,
    label: str | None = None,
    shuffle: bool | int | Literal["global"] = True,
    seed: int | None = None,
    start_step: int = 0,
    repeat: bool | int = False,
    cache: bool | str | os.PathLike[str] | None = None,
    image: ImageOptions | Mapping[str, Any] | str | int | None = None,
    text: str | None = None,
    shard: Any = None,
    deterministic: bool | None = None,
    for_model: Any = None,
    preprocess: Any = None,
) -> Any:
    """A ``tf.data.Dataset`` of ``(features, label)`` batches, ready for ``model.fit``.

    Args:
        files: TFRecord files of ``tf.train.Example``: a path, glob, folder, URL or a
            list (see :func:`expand_files`). Local files are read by TensorFlow's reader;
            remote ones (``gs://``, ``s3://``...) by hublayer's, through fsspec.
        schema: a :class:`Schema` (or the path of its JSON); None inspects a sample of
            1,000 records. Fixed lengths come from that sample: when a length changes only
            in rare records, pass a schema from ``inspect(files, sample=None)``.
        batch_size: examples per batch.
        label: the feature to yield as the label; None yields the features alone.
        shuffle: shuffle files and records (True, with a buffer of about 64 MB of records,
            256 to 10,000), or a buffer size; False keeps file order (for evaluation).
            ``"global"``: one exact shuffle of all records per epoch, a permutation
            drawn from ``seed`` and the epoch number, read through the files' indexes
            (:func:`index`; local, uncompressed files only).
        seed: makes shuffling, and the order of parallel work, reproducible.
        start_step: with ``shuffle="global"``, start at this batch of the stream, as if
            ``start_step`` batches had been consumed: a run that stopped after step
            ``s`` resumes exactly with the same ``seed``, ``batch_size``, ``repeat`` and
            ``shard`` and ``start_step=s`` (the skipped records are not read).
        repeat: False for one pass, True to repeat forever (batches are then all full,
            so the batch dimension is static too), or a number of passes.
        cache: True keeps the records in memory after the first pass; a path caches them
            in files there.
        image: how images decode: an :class:`ImageOptions`, a dict of its fields, a
            feature name or a size.
        text: the bytes feature that feeds a string model input.
        shard: ``(num_shards, index)``, or a ``tf.distribute.InputContext``: this worker
            reads every ``num_shards``-th file (or record, when there are fewer files).
        deterministic: keep the order of parallel work; default: only with a seed or
            without shuffling.
        for_model: the model to feed (``hublayer.inspect(...)``, a ``KerasLayer``, or
            ``TensorInfo`` values): image size, channels, dtype and value range, and the
            string inputs, come from it, and records that cannot feed it fail here.
        preprocess: a text preprocessor (a handle or folder, a ``KerasLayer`` of it, or a
            callable) run on each batch of the string feature (``text=``, else the only
            one) inside the pipeline: features become its outputs, matched by name to
            ``for_model``'s inputs when given. The way to train a JAX model on text
            (see ``_text_preprocess``).

    Returns:
        A ``tf.data.Dataset``. Features are a dict of name to tensor: decoded images,
        dense tensors with static shapes for fixed features, RaggedTensors for the rest.
        With ``for_model``, features are keyed by the model's input names, or a single
        tensor for a one-input model.

    Raises:
        SpecMismatchError: the records cannot feed ``for_model``; before anything runs.
        SchemaError: an unknown label or feature, a label of varying length, images of
            varying size with no size to decode them to, mixed compression.
        RecordError: a missing file, or corrupt records while inspecting.
        ValueError: a bad ``batch_size``, ``shuffle``, ``repeat``, ``shard`` or option.

    Example:
        >>> from hublayer import records
        >>> layer = hublayer.KerasLayer(handle)  # doctest: +SKIP
        >>> train = records.dataset("data/train-*.tfrecord", batch_size=32,  # doctest: +SKIP
        ...                         label="label", for_model=layer, repeat=True)
        >>> model.fit(train, steps_per_epoch=100, epochs=3)  # doctest: +SKIP
    """
    _check(batch_size, shuffle, repeat)
    shards = _shard(shard)
    if shuffle == "global" or start_step:
        seed = check_global(shuffle, seed, start_step, cache)
    paths = expand_files(files)
    if schema is None:
        schema = inspect(paths)
    elif not isinstance(schema, Schema):
        schema = Schema.load(schema)
    prep = None if preprocess is None else text_preprocess(preprocess, for_model)
    model_spec = for_model if prep is None else (prep.input,)  # strings in, then prep
    the_plan = plan(schema, label=label, image=image, text=text, for_model=model_spec)
    compression = _compression(paths)

    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    if deterministic is None:
        deterministic = seed is not None or not shuffle
    names = [str(p) for p in paths]
    by_file = shards is not None and len(names) >= shards[0]
    buffered = False if isinstance(shuffle, str) else shuffle  # a buffer, or file order
    if shuffle == "global" and seed is not None:  # check_global drew a seed if none
        epochs = None if repeat is True else int(repeat or 1)
        records, total = global_records(
            tf, names, seed=seed, epochs=epochs, shard=shards, skip=start_step * batch_size
        )
    else:
        records = _file_records(tf, names, compression, buffered, seed, shards, by_file)
        total = None
        if shards is not None and not by_file:
            records = records.shard(*shards)
        if cache:
            records = records.cache("" if cache is True else os.fspath(cache))
        if buffered:
            buffer = _shuffle_buffer(buffered, schema, paths)
            records = records.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            records = records.repeat(None if repeat is True else int(repeat))

    full = repeat is True
    if the_plan.images:
        batches = records.map(
            build_parse(tf, the_plan, batched=False),
            num_parallel_calls=autotune,
            deterministic=deterministic,
        )
        ragged = any(isinstance(i, TensorPlan) and i.shape is None for i in the_plan.inputs)
        if ragged:
            batches = batches.ragged_batch(batch_size, drop_remainder=full)
        else:
            batches = batches.batch(batch_size, drop_remainder=full)
    else:
        batches = records.batch(batch_size, drop_remainder=full).map(
            build_parse(tf, the_plan, batched=True),
            num_parallel_calls=autotune,
            deterministic=deterministic,
        )
    if prep is not None:
        batches = prep.apply(batches, labelled=label is not None, deterministic=deterministic)
    count = _batches(schema, names, shards, by_file, repeat, batch_size)
    if total is not None:  # shuffle="global": counted exactly from the index
        count = -(-total // batch_size)
    if count is not None:
        batches = batches.apply(tf.data.experimental.assert_cardinality(count))
    options = tf.data.Options()
    options.deterministic = deterministic
    if not the_plan.images:
        options.autotune.enabled = False  # see the module's notes: the tabular gap
    if shards is not None:
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return batches.prefetch(autotune).with_options(options)
