"""``records.ray_dataset``: TFRecord files as a Ray Data ``Dataset``, CRC checked.

Ray's own ``ray.data.read_tfrecords`` loops in Python per record, builds an Arrow table
per record (its speed against this reader: ``benchmarks/RESULTS.md``, case ``scale``) and
never checks the CRCs it reads: a flipped byte comes back as data
(``tests/test_ray_records.py``). This reads with hublayer's reader instead: one read
task per file, or per byte range of a large plain file (see :mod:`._ray_read`), every
record's CRC checked, and Examples decoded straight into columns with the :class:`Schema`.

Example:
    >>> ds = records.ray_dataset("data/train-*.tfrecord")  # doctest: +SKIP
    >>> ds.schema()  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from hublayer._ray import require_ray
from hublayer.records._files import Files, expand_files
from hublayer.records._framing import OnError
from hublayer.records._inspect import inspect
from hublayer.records._ray_read import columns_of
from hublayer.records._ray_skips import SkippedRecords
from hublayer.records._schema import Schema

__all__ = ["ray_dataset"]


def ray_dataset(
    files: Files,
    schema: Schema | str | os.PathLike[str] | None = None,
    *,
    columns: Sequence[str] | None = None,
    on_error: OnError = "raise",
    raw_column: str | None = None,
    file_column: str | None = None,
    check_columns: Sequence[str] = (),
    skipped: SkippedRecords | None = None,
) -> Any:
    """A ``ray.data.Dataset`` of the Examples in TFRecord files, every CRC checked.

    Args:
        files: TFRecord files (plain, GZIP or ZLIB): a path, glob, folder or a list.
        schema: a :class:`Schema` (or the path of its JSON); None inspects a sample of
            1,000 records, as :func:`records.inspect` does.
        columns: the features to read; None reads every feature of a known kind.
        on_error: ``"raise"`` (the default): the first bad record fails the read with
            :class:`RecordError` naming the file and offset (it is not retried);
            ``"skip"``: bad records are left out, and each read task logs how many (pass
            ``skipped=`` to get the counts back). A bad record is truncated, fails its
            CRC, is no Example, or holds a value of another kind than the schema says
            in a column read (a float list where it says int64): TensorFlow's parser
            refuses such a record too, and the error names the feature.
        raw_column: also give each serialized record, in a column of this name.
        file_column: also give the path of the file each row comes from.
        check_columns: more features whose kind is checked in every record as for
            ``columns``, without being read into columns (for example the features
            that a ``raw_column`` consumer parses itself).
        skipped: a :class:`SkippedRecords`; each read task reports to it how many
            records it met and skipped, so after the dataset ran, ``skipped.total``
            and ``skipped.by_file()`` give the counts on the driver, whatever
            ``log_to_driver`` says.

    Returns:
        A lazy ``ray.data.Dataset`` with one column per feature: a fixed-length feature
        as a fixed-shape numpy column (``[rows]`` for one value, ``[rows, n]`` for ``n``),
        a bytes feature of one value as binary, anything else one array per row. Rows
        come in file order within each read task.

    Raises:
        MissingExtraError: Ray is not installed (``pip install "hublayer[ray]"``).
        RecordError: a missing file (here), or a bad record (when the data is read), with
            ``file``, ``index``, ``offset``, and ``feature`` for a value of another kind.
        SchemaError: an unknown column, or a feature whose kind is mixed.
        ValueError: a bad ``on_error``.

    Example:
        >>> from hublayer import records
        >>> files = "data/train-*.tfrecord"
        >>> ds = records.ray_dataset(files, columns=["image", "label"])  # doctest: +SKIP
        >>> ds.map_batches(Embed, compute=ray.data.ActorPoolStrategy(size=2))  # doctest: +SKIP
        >>> skipped = records.SkippedRecords()  # doctest: +SKIP
        >>> ds = records.ray_dataset(files, on_error="skip", skipped=skipped)  # doctest: +SKIP
        >>> ds.count(), skipped.total  # doctest: +SKIP
        (11998, 2)
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(
            f'Expected on_error to be "raise" or "skip". Received: on_error={on_error!r}.'
        )
    require_ray("records.ray_dataset", "ray.data")
    paths = [os.fspath(p) for p in expand_files(files)]
    if schema is None:
        schema = inspect(paths, on_error=on_error)
    elif not isinstance(schema, Schema):
        schema = Schema.load(schema)
    chosen = columns_of(schema, None if columns is None else list(columns))
    chosen_names = {c.name for c in chosen}
    checks = tuple(
        c
        for c in columns_of(schema, list(dict.fromkeys(check_columns)))
        if c.name not in chosen_names
    )
    extra = [name for name in (raw_column, file_column) if name is not None]
    clash = sorted(set(extra) & {c.name for c in chosen})
    if clash or len(set(extra)) != len(extra):
        raise ValueError(
            "Expected raw_column and file_column to be new column names. Received: "
            f"raw_column={raw_column!r}, file_column={file_column!r}; features: "
            f"{', '.join(c.name for c in chosen)}. Pick other names."
        )

    import ray.data

    from hublayer.records._ray_source import TFRecordSource

    source = TFRecordSource(
        paths,
        chosen,
        on_error=on_error,
        raw_column=raw_column,
        file_column=file_column,
        checks=checks,
        skipped=skipped,
    )
    # A RecordError is an application error: Ray Data retries only system errors (a
    # lost worker), never those, so it reaches the driver at once.
    return ray.data.read_datasource(source)
