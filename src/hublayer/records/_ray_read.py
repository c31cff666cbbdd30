"""Read TFRecord shards into column batches: the work inside one Ray read task.

No Ray and no TensorFlow here, so it is tested and timed on its own. The Ray side (the
``Datasource``) is in :mod:`._ray_source`.

A read task reads one :class:`Piece`: a whole file (any compression, through
:class:`~hublayer.records.Reader`), or a byte range of a large plain file. Ranges start
at record boundaries found by walking the record headers once on the driver (the offset
index, :func:`pieces_of`); a walk hops from header to header and checks each length CRC,
so it reads 12 bytes per record::

    file   | rec 0 | rec 1 | rec 2 | ... | rec k | rec k+1 | ... | rec n |
    piece  [ start=0, end=offset(k), first=0 )[ start=offset(k), first=k ) ...

Every record's data CRC is checked in the task. Examples are decoded into columns with
the :class:`Schema`: a fixed-length feature becomes one numpy array of shape
``[rows, *shape]``, a bytes feature of one value a column of ``bytes``, anything else a
column holding one array per row.

Example:
    >>> pieces = pieces_of(["a.tfrecord"], target_bytes=64 << 20)  # doctest: +SKIP
    >>> for batch in read_piece(pieces[0], columns_of(schema)):  # doctest: +SKIP
    ...     batch["label"].shape
    (4096,)
"""

from __future__ import annotations

import logging
import mmap
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hublayer.errors import RecordError, SchemaError
from hublayer.records._files import file_size, is_url
from hublayer.records._framing import (
    FOOTER,
    FOOTER_SIZE,
    HEADER,
    HEADER_SIZE,
    OnError,
    detect_compression,
    masked_crc,
)
from hublayer.records._proto import Example
from hublayer.records._reader import Reader
from hublayer.records._schema import Schema

__all__ = ["Column", "Piece", "columns_of", "pieces_of", "read_piece"]

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


@dataclass(frozen=True)
class Piece:
    """What one read task reads: a whole file (``end is None``) or a byte range."""

    path: str
    compression: str
    size: int  # bytes on disk of this piece
    start: int = 0
    end: int | None = None
    first: int = 0  # record number of the first record
    rows: int | None = None  # known from the offset index, else None


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


def _header_error(path: str, what: str, index: int, offset: int) -> RecordError:
    return RecordError(
        f"Expected a valid TFRecord record in {path!r}. Received: {what} in record {index} "
        f"at byte offset {offset}. The file is truncated or corrupt: write it again, or "
        'read with on_error="skip" to skip bad records.',
        file=path,
        index=index,
        offset=offset,
    )


def _split(path: str, size: int, target: int) -> list[Piece]:
    """Cut a plain file into ranges of about ``target`` bytes at record boundaries.

    Falls back to one whole-file piece when a header is broken, so the task's
    :class:`Reader` reports it (or skips past it) with its usual resync.
    """
    whole = [Piece(path, "", size)]
    with open(path, "rb") as f:
        try:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return whole
    with mapped:
        cuts = [(0, 0)]
        pos, index, next_cut = 0, 0, target
        crcs: dict[int, int] = {}
        unpack = HEADER.unpack_from
        while pos < size:
            if size - pos < HEADER_SIZE:
                return whole
            length, length_crc = unpack(mapped, pos)
            if crcs.get(length) != length_crc:
                if masked_crc(mapped[pos : pos + 8]) != length_crc:
                    return whole
                crcs[length] = length_crc
            pos += HEADER_SIZE + length + FOOTER_SIZE
            index += 1
            if pos >= next_cut and pos < size:
                cuts.append((pos, index))
                next_cut = pos + target
        if pos != size:  # the last record runs past the end
            return whole
    ends = [*cuts[1:], (size, index)]
    return [
        Piece(path, "", end - start, start, end, first, last - first)
        for (start, first), (end, last) in zip(cuts, ends, strict=True)
    ]


def pieces_of(paths: Sequence[str | os.PathLike[str]], *, target_bytes: int) -> list[Piece]:
    """One piece per file, and plain files larger than ``target_bytes`` cut in ranges.

    Raises:
        RecordError: a file is missing or unreadable.

    Example:
        >>> [p.start for p in pieces_of(["big.tfrecord"], target_bytes=1 << 20)]  # doctest: +SKIP
        [0, 1048590, 2097180]
    """
    pieces: list[Piece] = []
    for item in paths:
        path = os.fspath(item)
        compression = detect_compression(path)
        size = file_size(path)
        if compression or size <= target_bytes or is_url(path):  # a URL is read in order
            pieces.append(Piece(path, compression, size))
        else:
            pieces.extend(_split(path, size, target_bytes))
    return pieces


def _range_records(piece: Piece, on_error: OnError, skipped: list[int]) -> Iterator[bytes]:
    """The records of a byte range of a plain file, each CRC checked."""
    assert piece.end is not None
    try:
        file = open(piece.path, "rb")  # noqa: SIM115 - closed below
    except OSError as error:
        raise RecordError(
            f"Expected a readable TFRecord file at {piece.path!r}. Received: {error}.",
            file=piece.path,
        ) from error
    with file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        end = min(piece.end, len(mapped))
        pos, index = piece.start, piece.first
        while pos < piece.end:
            if end - pos < HEADER_SIZE:
                raise _header_error(piece.path, "a truncated length header", index, pos)
            length, length_crc = HEADER.unpack_from(mapped, pos)
            if masked_crc(mapped[pos : pos + 8]) != length_crc:
                # The index walked this header: the file changed since; no safe resync.
                raise _header_error(piece.path, "a length whose CRC does not match", index, pos)
            data_end = pos + HEADER_SIZE + length
            if data_end + FOOTER_SIZE > end:
                raise _header_error(piece.path, f"a record of {length} bytes cut short", index, pos)
            data = mapped[pos + HEADER_SIZE : data_end]
            if masked_crc(data) != FOOTER.unpack_from(mapped, data_end)[0]:
                bad = _header_error(piece.path, "data whose CRC does not match", index, pos)
                if on_error == "raise":
                    raise bad
                skipped[0] += 1
                if skipped[0] == 1:
                    logger.warning("%s", bad)
            else:
                yield data
            pos = data_end + FOOTER_SIZE
            index += 1


def _records(piece: Piece, on_error: OnError, skipped: list[int]) -> Iterator[bytes]:
    if piece.end is not None:
        yield from _range_records(piece, on_error, skipped)
        return
    with Reader(piece.path, compression=piece.compression, on_error=on_error) as reader:
        yield from reader
        skipped[0] += reader.skipped
        if reader.errors:
            logger.warning("%s", reader.errors[0])


class _Builder:
    """Collects decoded values per column and turns them into numpy arrays."""

    def __init__(self, path: str, columns: Sequence[Column]) -> None:
        self.path = path
        self.columns = columns
        self.lists = [_LIST[c.kind] for c in columns]
        self.values: list[list[Any]] = [[] for _ in columns]
        self.rows = 0

    def add(self, record: bytes, index: int) -> None:
        try:
            features = Example.FromString(record).features.feature
        except Exception as error:
            raise RecordError(
                f"Expected a serialized tf.train.Example in record {index} of "
                f"{self.path!r}. Received: {len(record)} bytes that do not parse ({error}).",
                file=self.path,
                index=index,
            ) from None
        for column, kind_list, sink in zip(self.columns, self.lists, self.values, strict=True):
            if column.name in features:
                values = getattr(features[column.name], kind_list).value
            else:
                values = ()
            shape = column.shape
            if shape is None:
                sink.append(values)
                continue
            want = 1 if not shape else shape[0]
            if len(values) != want:
                raise SchemaError(
                    f"Expected feature {column.name!r} to hold {want} {column.kind} value(s) "
                    f"in every record, as the schema says. Received: {len(values)} in record "
                    f"{index} of {self.path!r}. Pass a schema from "
                    "records.inspect(files, sample=None), or leave the feature out with "
                    "columns=.",
                    feature=column.name,
                )
            if want == 1 and not shape:
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
) -> Iterator[dict[str, np.ndarray]]:
    """Yield column batches of up to ``block_rows`` rows from one piece.

    Args:
        piece: from :func:`pieces_of`.
        columns: from :func:`columns_of`.
        on_error: ``"raise"`` at the first bad record, or ``"skip"`` it (a warning names
            the first one and the count).
        raw_column: also yield each serialized record in this column.
        file_column: also yield the piece's file path in this column.
        block_rows: rows per batch.

    Raises:
        RecordError: a corrupt record (with ``file``, ``index`` and ``offset``).
        SchemaError: a fixed-length feature with another length in some record.
    """
    builder = _Builder(piece.path, columns)
    raw: list[bytes] = []
    skipped = [0]
    index = piece.first

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

    for record in _records(piece, on_error, skipped):
        builder.add(record, index)
        index += 1
        if raw_column is not None:
            raw.append(record)
        if builder.rows >= block_rows:
            yield take()
    if builder.rows:
        yield take()
    if skipped[0]:
        logger.warning("Skipped %d bad record(s) in %s.", skipped[0], piece.path)
