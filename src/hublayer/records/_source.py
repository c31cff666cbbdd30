"""``records.Source``: TFRecord files as a map-style data source, every CRC checked.

``len(src)`` and ``src[i]``, so grain, PyTorch's ``DataLoader`` or any sampler can
shuffle globally, shard by index and resume exactly; without TensorFlow. Each file's
record offsets come from :func:`~hublayer.records.index` (DALI's index format)::

    src[i] ─▶ file f, offset o, size s   (index: three arrays, one entry per record)
          ─▶ pread(s bytes at o)         (one call; positionless, so threads share it;
                                          a batch slices the files' maps instead)
          ─▶ length CRC? length == s - 16? data CRC?   else RecordError(file, offset, i)
          ─▶ decode                      (dict of numpy arrays, or the bytes with raw=True)

After the first good record of a frame size, the next ones of that size take a short
path: one ``struct`` unpack splits the frame (and fails on a short read), its 12 header
bytes are compared with that size's header already checked (length and length CRC in
one comparison), the data CRC is computed as always, and the layout of that size reads
the values in one call; anything that differs goes the long way, which names the error.

One record is read with ``pread``: a file truncated meanwhile gives a short read and a
:class:`~hublayer.errors.RecordError`. A batch reads from memory maps, for less CPU
per record, after checking that its files still hold every indexed byte (see
:mod:`._open_files` for the SIGBUS this guards against). Decoding goes through
:class:`~._wire.ExampleDecoder` (the same arrays as ``decode_example``, faster on
small records; a batch of records that share a layout is decoded as one numpy block)
and falls back to ``decode_example`` for encodings it does not read. The ``source``
case of ``benchmarks/RESULTS.md`` times both reads against tf.data.

Example:
    >>> from hublayer import records
    >>> src = records.Source("data/train-*.tfrecord")  # doctest: +SKIP
    >>> len(src), src[0]["label"], src[-1]["label"]  # doctest: +SKIP
    (50000, array([3]), array([7]))
"""

from __future__ import annotations

import operator
import os
import struct
from array import array
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from crc32c import crc32c as _crc

from hublayer.errors import RecordError
from hublayer.records._batch import bad_rows, blocks
from hublayer.records._example import decode_example
from hublayer.records._files import Files
from hublayer.records._framing import FOOTER, HEADER, MASK_DELTA, U32, masked_crc
from hublayer.records._index import FileIndex, load_indexes
from hublayer.records._layout import Layout
from hublayer.records._open_files import OpenFiles
from hublayer.records._schema import Schema
from hublayer.records._shape import Shaper
from hublayer.records._wire import ExampleDecoder

__all__ = ["Source"]

_MAX_KNOWN = 256  # frame sizes whose header and layout a Source keeps


class Source:
    """TFRecord files as a map-style source: ``len()``, ``src[i]``, ``src.__getitems__``.

    Args:
        files: local, uncompressed TFRecord files of ``tf.train.Example``: a path, glob,
            folder or list (see :func:`~hublayer.records.expand_files`). Each file is
            indexed first (:func:`~hublayer.records.index`; reused while current).
        columns: decode only these features (faster); None decodes every feature.
        schema: a :class:`~hublayer.records.Schema` (or its JSON path) to shape the
            values: fixed features get their exact shape (``()`` for one value, so a
            batch of labels stacks to ``[batch]``), every feature its dtype, a missing
            optional feature an empty array; a record that breaks the schema raises
            :class:`~hublayer.errors.SchemaError`. Its features are the columns unless
            ``columns`` names fewer.
        raw: give each record's bytes (the serialized Example) instead of decoding.

    Reading ``src[i]`` gives a dict of feature name to numpy array, as
    :func:`~hublayer.records.decode_example` gives it (``float32``, ``int64``, object
    arrays of ``bytes``), or ``bytes`` with ``raw=True``. Negative indexes count from
    the end. Both CRCs of every record are checked on every read.

    A Source is thread-safe, and picklable: the copy reopens the files (and checks
    they are unchanged) in the process that unpickles it, so DataLoader workers and
    grain's multiprocessing can use it. It is also a ``torch.utils.data.Dataset`` in
    all but name (``__getitems__`` included) and a grain ``RandomAccessDataSource``
    (``_getitems`` included).

    Raises:
        RecordError: from the constructor: a missing, remote or compressed file, or a
            file whose framing is broken (see :func:`~hublayer.records.index`). From a
            read: a record that fails a CRC, that the index no longer matches, or that
            is not an Example; the error names ``file``, ``offset`` and ``index``, and
            the other records still read.
        IndexError: an index outside ``[-len(src), len(src))``.
        SchemaError: a record that does not fit ``schema``.
        ValueError: ``raw=True`` with ``columns`` or ``schema``.

    Example:
        >>> import grain  # doctest: +SKIP
        >>> files = "data/train-*.tfrecord"
        >>> src = records.Source(files, schema=records.inspect(files))  # doctest: +SKIP
        >>> ds = grain.MapDataset.source(src).shuffle(seed=0).batch(256)  # doctest: +SKIP
        >>> batch = ds[0]  # doctest: +SKIP
    """

    def __init__(
        self,
        files: Files,
        *,
        columns: Sequence[str] | None = None,
        schema: Schema | str | os.PathLike[str] | None = None,
        raw: bool = False,
    ) -> None:
        if raw and (columns is not None or schema is not None):
            raise ValueError(
                "Expected raw=True alone: raw records are not decoded. Received: "
                f"raw=True with columns={columns!r}, schema={schema!r}. Drop one or the other."
            )
        if isinstance(columns, str):
            columns = [columns]
        self._shaper = None if schema is None else Shaper(schema, columns)
        self.columns: tuple[str, ...] | None = None if columns is None else tuple(columns)
        if self._shaper is not None:
            self.columns = self._shaper.columns
        self.raw = raw
        indexes = load_indexes(files)
        self._setup(indexes)

    def _setup(self, indexes: list[FileIndex]) -> None:
        self.files: tuple[str, ...] = tuple(e.file for e in indexes)
        self.index_paths = tuple(e.path for e in indexes)
        self._open = OpenFiles(self.files, [(e.file_size, e.mtime_ns) for e in indexes])
        counts = [len(e) for e in indexes]
        self._starts = [0]
        for count in counts:
            self._starts.append(self._starts[-1] + count)
        self._len = self._starts[-1]
        offsets = np.concatenate([e.offsets for e in indexes]) if indexes else np.zeros(0)
        sizes = np.concatenate([e.sizes for e in indexes]) if indexes else np.zeros(0)
        # array('q') gives Python ints on indexing, the fastest path for one read.
        self._offsets = array("q", offsets.astype(np.int64).tobytes())
        self._sizes = array("q", sizes.astype(np.int64).tobytes())
        self._offset_array = np.frombuffer(self._offsets, np.int64)
        self._size_array = np.frombuffer(self._sizes, np.int64)
        self._first = np.array(self._starts[:-1], np.int64)  # each file's first record
        # each record's file number, one lookup for src[i]
        wide = len(counts) > 1 << 16
        numbers = np.repeat(np.arange(len(counts)), counts).astype(np.uint32 if wide else np.uint16)
        self._file_at = array("I" if wide else "H", numbers.tobytes())
        self._open_state()

    def _open_state(self) -> None:
        self._decoder = ExampleDecoder(self.columns)
        self._length_crcs: dict[int, int] = {}  # record length -> its masked CRC
        # frame size -> (its struct, its checked header, the layout of its records)
        self._known: dict[int, tuple[struct.Struct, bytes, Layout | None]] = {}

    # -- the sequence protocol ----------------------------------------------------------
    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        shown = "raw" if self.raw else f"columns={list(self.columns) if self.columns else 'all'}"
        return f"Source({len(self.files)} files, {self._len:,} records, {shown})"

    def __iter__(self) -> Iterator[Any]:
        for i in range(self._len):
            yield self[i]

    def __getitem__(self, index: int) -> Any:
        i = index if type(index) is int and 0 <= index < self._len else self._position(index)
        file = self._file_at[i]
        size = self._sizes[i]
        try:
            fd = self._open.fds[file]
            frame = os.pread(self._open.fd(file) if fd is None else fd, size, self._offsets[i])
        except OSError as error:
            raise self._error(i, f"a read error ({error})") from error
        known = self._known.get(size)
        if known is None:
            return self._read(frame, size, i)
        # A size read before: one unpack splits the frame (a short one fails it), the
        # header is compared with the one already checked for this size (length and
        # length CRC at once), the data CRC is computed, and the layout reads the values.
        parts, head, layout = known
        try:
            got, data, stored = parts.unpack(frame)
        except struct.error:
            got = None
        if got != head:
            return self._read(frame, size, i)  # raises the error that names the record
        c = _crc(data)
        if (((c >> 15 | c << 17) & U32) + MASK_DELTA) & U32 != stored:
            raise self._error(i, "data whose CRC does not match")
        if layout is None:
            return data  # raw
        values = layout.read(data)
        if values is None:  # another structure of the same size
            return self._read(frame, size, i)
        return values if self._shaper is None else self._shaper(values, self._file_of(i), i)

    def _read(self, frame: bytes, size: int, i: int) -> Any:
        """``src[i]`` from its ``frame``, every step in full; a record that reads well
        leaves its size's header and layout for the next record of that size."""
        data = self._checked(frame, size, i)
        if self.raw:
            self._learn(frame, size, None)
            return data
        values = self._decoder(data)
        if values is None:
            values = self._fallback(data, i)
        elif (layout := self._decoder.layout(size - 16)) is not None:
            self._learn(frame, size, layout)
        return values if self._shaper is None else self._shaper(values, self._file_of(i), i)

    def _learn(self, frame: bytes, size: int, layout: Layout | None) -> None:
        """Keep the checked header of ``frame`` and its ``layout`` for its size."""
        if len(self._known) < _MAX_KNOWN or size in self._known:
            self._known[size] = (struct.Struct(f"<12s{size - 16}sI"), frame[:12], layout)

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """The records at ``indices``, in that order, read and decoded in one call.

        PyTorch's ``DataLoader`` calls this with a batch of indices (then collates the
        list); grain calls it as ``_getitems``. Records that share a layout are decoded
        together (see :mod:`._layout`), so a batch costs less per record than ``src[i]``.

        Raises:
            IndexError, RecordError, SchemaError: as for ``src[i]``, at the first bad
                index or record.
        """
        at = self._positions(indices)
        positions = at.tolist()
        files = np.searchsorted(self._first, at, "right") - 1
        offsets, sizes = self._offset_array[at], self._size_array[at]
        maps = self._open.maps(set(files.tolist()))
        groups, alone = blocks(maps, files, offsets, sizes)
        out: list[Any] = [None] * len(positions)
        for block in groups:
            bad = bad_rows(block)
            if bad:  # read alone, it raises the error that names it
                row = block.rows[bad[0]]
                self._checked(block.frame(bad[0]), block.size, positions[row])
            if self.raw:
                for j, row in enumerate(block.rows):
                    out[row] = block.record(j)
                continue
            decoded = self._decoder.block(block.data, block.record)
            for j, (row, values) in enumerate(zip(block.rows, decoded, strict=True)):
                if values is None:
                    values = self._fallback(block.record(j), positions[row])
                out[row] = values
        for row in alone:  # small groups and large records: one by one
            offset, size = int(offsets[row]), int(sizes[row])
            frame = maps[int(files[row])][offset : offset + size]  # type: ignore[index]
            out[row] = self._checked(frame, size, positions[row])
        if not self.raw:
            datas = [out[row] for row in alone]
            for row, data, values in zip(alone, datas, self._decoder.many(datas), strict=True):
                out[row] = self._fallback(data, positions[row]) if values is None else values
        if self._shaper is not None:
            shape, file_of = self._shaper, self._file_of
            return [shape(v, file_of(i), i) for v, i in zip(out, positions, strict=True)]
        return out

    _getitems = __getitems__  # grain's name for batched reads

    def _positions(self, indices: Sequence[int]) -> np.ndarray:
        """``indices`` as int64 positions in ``[0, len)``; ``_position`` explains a bad one."""
        given = np.asarray(indices)
        if given.ndim != 1 or given.dtype.kind not in "iu":  # [] too: float64
            return np.array([self._position(i) for i in indices], np.int64)
        at = given.astype(np.int64)
        at = np.where(at < 0, at + self._len, at)
        if at.size and (at.min() < 0 or at.max() >= self._len):
            return np.array([self._position(i) for i in indices], np.int64)
        return at

    def _position(self, index: Any) -> int:
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(
                f"Expected an int index. Received: {index!r} ({type(index).__name__}). "
                "Use src.__getitems__(indices) for several records."
            ) from None
        n = self._len
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(
                f"Expected an index in [-{n}, {n}) for a source of {n} records. Received: {index}."
            )
        return i

    # -- reading ------------------------------------------------------------------------
    def _file_of(self, i: int) -> str:
        return self.files[self._file_at[i]]

    def _checked(self, frame: bytes, size: int, i: int) -> bytes:
        """The data of record ``i`` from its ``frame`` (``size`` bytes by the index),
        both CRCs checked."""
        if len(frame) != size:
            raise self._error(i, self._mismatch(frame, size))
        if size < 16:  # an entry the index made for a damaged header
            raise self._error(i, "a length whose CRC does not match")
        length, length_crc = HEADER.unpack_from(frame)
        if self._length_crcs.get(length) != length_crc:
            if masked_crc(frame[:8]) != length_crc:
                raise self._error(i, "a length whose CRC does not match")
            self._length_crcs[length] = length_crc
        if length != size - 16:
            raise self._error(i, self._mismatch(frame, size))
        data = frame[12:-4]
        c = _crc(data)
        stored = FOOTER.unpack_from(frame, size - 4)[0]
        if (((c >> 15 | c << 17) & U32) + MASK_DELTA) & U32 != stored:
            raise self._error(i, "data whose CRC does not match")
        return data

    def _mismatch(self, frame: bytes, size: int) -> str:
        if len(frame) < size:
            return f"{len(frame)} of {size} bytes (the file shrank since it was indexed)"
        length = HEADER.unpack_from(frame)[0]
        return (
            f"a record of {length} bytes where the index says {size - 16} (the index "
            "does not match the file)"
        )

    def _fallback(self, data: bytes, i: int) -> dict[str, Any]:
        try:
            values = decode_example(data)
        except RecordError as error:
            raise self._error(i, error.message, decoded=True) from None
        if self.columns is not None:
            values = {k: v for k, v in values.items() if k in self.columns}
        return values

    def _error(self, i: int, what: str, *, decoded: bool = False) -> RecordError:
        file = self._file_at[i]
        path, offset = self.files[file], self._offsets[i]
        record = i - self._starts[file]
        where = f"record {i} of the source (record {record} of {path!r}, byte offset {offset})"
        if decoded:
            message = f"{what} In {where}."
        else:
            message = (
                f"Expected a valid TFRecord record at {where}. Received: {what}. The file "
                "is corrupt or changed; the other records still read."
            )
        return RecordError(message, file=path, offset=offset, index=i)

    # -- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        """Close the files (a later read opens them again)."""
        self._open.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_decoder", "_length_crcs", "_known"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._open_state()
