"""Read TFRecord shards into column batches: the work inside one Ray read task.

No Ray and no TensorFlow here, so it is tested and timed on its own. The Ray side (the
``Datasource``) is in :mod:`._ray_source`.

A read task reads one :class:`Piece`: a whole file, or a byte range of a large plain
file, cut by :func:`pieces_of` (see :mod:`._pieces`, which also checks every record's
data CRC in the task). Examples are decoded into columns with the :class:`Schema`: a
fixed-length feature becomes one numpy array of shape
``[rows, *shape]``, a bytes feature of one value a column of ``bytes``, anything else a
column holding one array per row. A value of another kind than the schema's (a float
list where it says int64) is a bad record, as TensorFlow's parser has it: it raises
:class:`RecordError` naming the file, offset and feature, or is skipped and counted.
What a piece read and skipped is left in a :class:`PieceCounts` for the driver.

Example:
    >>> pieces = pieces_of(["a.tfrecord"], target_bytes=64 << 20)  # doctest: +SKIP
    >>> for batch in read_piece(pieces[0], columns_of(schema)):  # doctest: +SKIP
    ...     batch["label"].shape
    (4096,)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hublayer.errors import RecordError, SchemaError
from hublayer.records._framing import OnError
from hublayer.records._pieces import Piece, PieceCounts, piece_records, pieces_of
from hublayer.records._proto import Example
from hublayer.records._schema import Schema

__all__ = ["Column", "Piece", "PieceCounts", "columns_of", "pieces_of", "read_piece"]

logger = logging.getLogger("hublayer.records")

_NUMPY = {"float": np.float32, "int64": np.int64}
_LIST = {"bytes": "bytes_list", "float": "float_list", "int64": "int64_list"}
BLOCK_ROWS = 4096  # rows per block a task yields


@dataclass(frozen=True)
class Column:
    """One output column: a feature's kind and per-row shape (None: varies)."""

    name: str
    kind: str  # "bytes", "float" or "int64"
    shape: tuple[int, ...] | None


def columns_of(schema: Schema, names: Sequence[str] | None = None) -> tuple[Column, ...]:
    """The columns for ``names`` (default: every feature of a known kind).

    Raises:
        SchemaError: an unknown name, or a feature of mixed or unknown kind.

    Example:
        >>> columns_of(schema, ["label"])  # doctest: +SKIP
        (Column(name='label', kind='int64', shape=()),)
    """
    if names is None:
        names = [f.name for f in schema.features if f.kind not in (None, "mixed")]
    columns = []
    for name in names:
        stats = schema[name]
        stats.dtype  # noqa: B018 - raises SchemaError for a mixed or unknown kind
        assert stats.kind is not None
        columns.append(Column(name, stats.kind, stats.shape))
    return tuple(columns)


def _kind_error(path: str, column: Column, found: str, index: int, offset: int) -> RecordError:
    return RecordError(
        f"Expected feature {column.name!r} to hold {column.kind} values, as the schema "
        f"says. Received: a {found.replace('_list', '')} list in record {index} at byte "
        f"offset {offset} of {path!r}. TensorFlow's parser refuses this record too: fix "
        'the record, read with on_error="skip" to skip such records, or pass a schema '
        "from records.inspect(files, sample=None).",
        file=path,
        index=index,
        offset=offset,
        feature=column.name,
    )


class _Builder:
    """Collects decoded values per column and turns them into numpy arrays.

    ``checks`` are features whose kind is checked in every record but not kept.
    """

    def __init__(self, path: str, columns: Sequence[Column], checks: Sequence[Column] = ()) -> None:
        self.path = path
        self.columns = columns
        self.lists = [_LIST[c.kind] for c in columns]
        self.checks = [(c, _LIST[c.kind]) for c in checks]
        self.values: list[list[Any]] = [[] for _ in columns]
        self.rows = 0

    def add(self, record: bytes, index: int, offset: int) -> None:
        """Add one record's values, or raise (before adding any of them).

        Raises:
            RecordError: the record is no Example, or a value's kind is not the schema's.
            SchemaError: a fixed-length feature with another length.
        """
        try:
            features = Example.FromString(record).features.feature
        except Exception as error:
            raise RecordError(
                f"Expected a serialized tf.train.Example in record {index} at byte offset "
                f"{offset} of {self.path!r}. Received: {len(record)} bytes that do not "
                f"parse ({error}).",
                file=self.path,
                index=index,
                offset=offset,
            ) from None
        for column, kind_list in self.checks:
            if column.name in features:
                found = features[column.name].WhichOneof("kind")
                if found is not None and found != kind_list:
                    raise _kind_error(self.path, column, found, index, offset)
        row: list[Any] = []
        for column, kind_list in zip(self.columns, self.lists, strict=True):
            if column.name in features:
                feature = features[column.name]
                found = feature.WhichOneof("kind")
                if found is not None and found != kind_list:
                    raise _kind_error(self.path, column, found, index, offset)
                values = getattr(feature, kind_list).value
            else:
                values = ()
            shape = column.shape
            if shape is not None:
                want = 1 if not shape else shape[0]
                if len(values) != want:
                    raise SchemaError(
                        f"Expected feature {column.name!r} to hold {want} {column.kind} "
                        f"value(s) in every record, as the schema says. Received: "
                        f"{len(values)} in record {index} of {self.path!r}. Pass a schema "
                        "from records.inspect(files, sample=None), or leave the feature out "
                        "with columns=.",
                        feature=column.name,
                    )
            row.append(values)
        for column, values, sink in zip(self.columns, row, self.values, strict=True):
            if column.shape is None:
                sink.append(values)
            elif not column.shape:
                sink.append(values[0])
            else:
                sink.extend(values)
        self.rows += 1

    def take(self) -> dict[str, np.ndarray]:
        batch: dict[str, np.ndarray] = {}
        for column, values in zip(self.columns, self.values, strict=True):
            batch[column.name] = _array(column, values, self.rows)
        self.values = [[] for _ in self.columns]
        self.rows = 0
        return batch


def _array(column: Column, values: list[Any], rows: int) -> np.ndarray:
    if column.shape is None:
        out = np.empty(rows, dtype=object)
        if column.kind == "bytes":
            out[:] = [np.array(list(v), dtype=object) for v in values]
        else:
            dtype = _NUMPY[column.kind]
            out[:] = [np.fromiter(v, dtype, len(v)) for v in values]
        return out
    if column.kind == "bytes":
        flat = np.empty(len(values), dtype=object)
        flat[:] = values
    else:
        flat = np.asarray(values, dtype=_NUMPY[column.kind])
    return flat.reshape((rows, *column.shape))


def read_piece(
    piece: Piece,
    columns: Sequence[Column],
    *,
    on_error: OnError = "raise",
    raw_column: str | None = None,
    file_column: str | None = None,
    block_rows: int = BLOCK_ROWS,
    checks: Sequence[Column] = (),
    counts: PieceCounts | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Yield column batches of up to ``block_rows`` rows from one piece.

    Args:
        piece: from :func:`pieces_of`.
        columns: from :func:`columns_of`.
        on_error: ``"raise"`` at the first bad record, or ``"skip"`` it (a warning names
            the first one and the count). A bad record is one that is truncated, fails
            its CRC, does not parse, or holds a value of another kind than its column's.
        raw_column: also yield each serialized record in this column.
        file_column: also yield the piece's file path in this column.
        block_rows: rows per batch.
        checks: more columns whose kind is checked in every record, but not yielded.
        counts: filled in as the piece is read: records met, and records skipped.

    Raises:
        RecordError: a corrupt record (with ``file``, ``index`` and ``offset``), or a
            value of another kind than the schema's (with ``feature`` too).
        SchemaError: a fixed-length feature with another length in some record.
    """
    builder = _Builder(piece.path, columns, checks)
    raw: list[bytes] = []
    counts = PieceCounts() if counts is None else counts
    first_bad: RecordError | None = None

    def take() -> dict[str, np.ndarray]:
        rows = builder.rows
        batch = builder.take()
        if raw_column is not None:
            column = np.empty(rows, dtype=object)
            column[:] = raw
            batch[raw_column] = column
            raw.clear()
        if file_column is not None:
            batch[file_column] = np.full(rows, piece.path, dtype=object)
        return batch

    for index, offset, record in piece_records(piece, on_error, counts):
        try:
            builder.add(record, index, offset)
        except RecordError as error:
            if on_error == "raise":
                raise
            counts.skipped += 1
            if first_bad is None:
                first_bad = error
                logger.warning("%s", error)
            continue
        if raw_column is not None:
            raw.append(record)
        if builder.rows >= block_rows:
            yield take()
    if builder.rows:
        yield take()
    if counts.skipped:
        logger.warning("Skipped %d bad record(s) in %s.", counts.skipped, piece.path)
