"""Decode a ``tf.train.Example`` straight from its wire bytes into numpy arrays.

:func:`~hublayer.records.decode_example` parses with upb, then builds each array from
the message's containers; reading those containers costs more than the parse, even for
one int64 label. Random-access reading (:class:`~hublayer.records.Source`)
decodes one record at a time, so this module reads the bytes the way every writer we
know lays them out (TensorFlow, hublayer, the ``tfrecord`` package: the protobuf
canonical encoding)::

    Example       0x0A len Features                     (field 1, once)
    Features      { 0x0A len MapEntry }                 (field 1, repeated)
    MapEntry      0x0A len key, 0x12 len Feature        (key first, then value)
    Feature       0x0A len BytesList | 0x12 len FloatList | 0x1A len Int64List | empty
    BytesList     { 0x0A len bytes }
    FloatList     0x0A len little-endian float32s       (packed)
    Int64List     0x0A len varints                      (packed; two's complement)

Anything else (unpacked numbers, fields in another order, unknown fields, a repeated
``features`` field, a list split over several fields, int64 lists of large values) is
valid protobuf that a writer may produce: :class:`ExampleDecoder` returns None for it,
and the caller falls back to :func:`~hublayer.records.decode_example`, which also raises
the error for bytes that are not an Example at all. The arrays are the same as
``decode_example`` gives (``float32``, ``int64``, object arrays of ``bytes``, an empty
``float32`` array for a kind-less feature), writable, and own their memory; a test
compares the two on generated Examples.

**Layouts.** The records of one data set mostly share their structure: the same
features, in the same order, with the same lengths. After a full parse, the decoder
keeps the record's *layout*, keyed by the record's size: where each value lies, and
every other byte (tags, lengths, names). A record of the same size whose non-value
bytes are all equal parses along the same path to the same positions, so its values
are read from there directly; a few slice comparisons replace the parse (on
tabular records, a large part of the decode time). A record that differs is parsed in full.

Example:
    >>> from hublayer.records._example import encode_example
    >>> decode = ExampleDecoder()
    >>> values = decode(encode_example({"label": 3, "x": [0.5, 1.5]}))
    >>> values["label"], values["x"]
    (array([3]), array([0.5, 1.5], dtype=float32))
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np

from hublayer.records._layout import BYTES, EMPTY, FLOAT, INT, Field, Layout, varint

__all__ = ["ExampleDecoder"]

_MAX_LAYOUTS = 64
_MAX_NAMES = 4096
_MIN_BLOCK = 8  # records of one layout from which a batch reads them as a block
_EMPTY_DTYPE = {0x12: np.dtype(np.float32), 0x1A: np.dtype(np.int64)}


def _length(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The length after the tag at ``pos``, and where its payload starts; a payload
    that runs past ``end`` gives ``(-1, end)``."""
    size = data[pos + 1]
    pos += 2
    if size >= 0x80:
        size, pos = varint(data, pos - 1, end)
    return (size, pos) if size >= 0 and pos + size <= end else (-1, end)


class ExampleDecoder:
    """Serialized ``tf.train.Example`` -> dict of numpy arrays, as ``decode_example``.

    Call it with one record, or :meth:`many` with a batch; a record comes back as its
    dict, or None for an encoding the decoder does not read (then decode it with
    ``decode_example``, which also raises for bytes that are not an Example).
    Thread-safe: layouts are immutable and replaced whole.

    Args:
        columns: decode only these features; None decodes all.

    Example:
        >>> ExampleDecoder(columns=["y"])(b"\\x0a\\x00")
        {}
    """

    def __init__(self, columns: Collection[str] | None = None) -> None:
        self.columns = None if columns is None else frozenset(columns)
        self._layouts: dict[int, Layout] = {}
        self._names: dict[bytes, str] = {}

    def __call__(self, data: bytes) -> dict[str, Any] | None:
        layout = self._layouts.get(len(data))
        if layout is not None:
            values = layout.read(data)
            if values is not None:
                return values
        layout = self._learn(data)
        return None if layout is None else layout.read(data, check=False)

    def layout(self, size: int) -> Layout | None:
        """The layout known for records of ``size`` bytes (the one a call tries first).

        Example:
            >>> decode = ExampleDecoder()
            >>> decode(b"\\x0a\\x00"), decode.layout(2) is not None
            ({}, True)
        """
        return self._layouts.get(size)

    def many(self, datas: Sequence[bytes]) -> list[dict[str, Any] | None]:
        """Decode a batch: records that share a known layout are read as one block.

        Example:
            >>> ExampleDecoder().many([b"", b"\\x0a\\x00"])
            [{}, {}]
        """
        out: list[dict[str, Any] | None] = [None] * len(datas)
        groups: dict[int, list[int]] = {}
        for at, data in enumerate(datas):
            rows = groups.get(len(data))
            if rows is None:
                groups[len(data)] = [at]
            else:
                rows.append(at)
        layouts = self._layouts
        alone: list[int] = []
        for size, rows in groups.items():
            layout = layouts.get(size)
            if layout is None or len(rows) < _MIN_BLOCK:
                alone.extend(rows)
                continue
            for at, values in zip(rows, layout.values_many([datas[r] for r in rows]), strict=True):
                if values is None:
                    alone.append(at)
                else:
                    out[at] = values
        for at in alone:
            out[at] = self(datas[at])
        return out

    def block(
        self, data: np.ndarray, record: Callable[[int], bytes]
    ) -> list[dict[str, Any] | None]:
        """Decode records of one size stacked in ``data`` (``[records, size]`` uint8);
        ``record(j)`` gives row ``j``'s bytes (for rows read alone).

        Example:
            >>> rows = [b"\\x0a\\x00"] * 2
            >>> ExampleDecoder().block(np.frombuffer(b"".join(rows), np.uint8).reshape(2, 2),
            ...                        rows.__getitem__)
            [{}, {}]
        """
        layout = self._layouts.get(data.shape[1])
        if layout is None and len(data):
            self(record(0))  # learns the first record's layout
            layout = self._layouts.get(data.shape[1])
        out: list[dict[str, Any] | None] = (
            [None] * len(data) if layout is None else layout.values_block(data, record)
        )
        for j, values in enumerate(out):
            if values is None:
                out[j] = self(record(j))
        return out

    def _learn(self, data: bytes) -> Layout | None:
        """Parse ``data`` in full and keep its layout; None for an encoding not read."""
        try:
            parsed = self._parse(data)
        except IndexError:  # a tag at the very end: not a canonical Example
            return None
        if parsed is None:
            return None
        fields, spans = parsed
        layout = Layout(_runs(data, spans), fields)
        if len(self._layouts) < _MAX_LAYOUTS or len(data) in self._layouts:
            self._layouts[len(data)] = layout
        return layout

    def _name(self, key: bytes) -> str | None:
        name = self._names.get(key)
        if name is None:
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                return None
            if len(self._names) < _MAX_NAMES:
                self._names[key] = name
        return name

    def _parse(self, data: bytes) -> tuple[tuple[Field, ...], list[tuple[int, int]]] | None:
        """The fields of ``data`` and the spans of their values (everything else in
        ``data`` is structure), or None for a layout this decoder does not read."""
        end = len(data)
        fields: list[Field] = []
        spans: list[tuple[int, int]] = []
        if not end:
            return (), spans
        size, pos = varint(data, 1, end) if data[0] == 0x0A else (-1, end)
        if size < 0 or pos + size != end:
            return None
        columns = self.columns
        while pos < end:
            if data[pos] != 0x0A:
                return None
            size, pos = _length(data, pos, end)
            entry_end = pos + size
            if size <= 0 or data[pos] != 0x0A:
                return None
            size, pos = _length(data, pos, entry_end)
            name = self._name(data[pos : pos + size]) if size >= 0 else None
            if name is None:
                return None
            pos += size
            if columns is not None and name not in columns:
                spans.append((pos, entry_end))
            elif pos == entry_end:  # a map entry without a value: an empty Feature
                fields.append((name, EMPTY, np.dtype(np.float32), 0))
            elif data[pos] != 0x12:
                return None
            else:
                size, pos = _length(data, pos, entry_end)
                if (
                    size < 0
                    or pos + size != entry_end
                    or not _feature(data, pos, entry_end, name, fields, spans)
                ):
                    return None
            pos = entry_end
        return tuple(fields), spans


def _feature(
    data: bytes,
    pos: int,
    end: int,
    name: str,
    fields: list[Field],
    spans: list[tuple[int, int]],
) -> bool:
    """Add the Feature message in ``data[pos:end]`` to ``fields`` and its values to
    ``spans``; False for a layout the decoder does not read."""
    if pos == end:  # no kind set
        fields.append((name, EMPTY, np.dtype(np.float32), 0))
        return True
    kind = data[pos]
    size, pos = _length(data, pos, end)
    if size < 0 or pos + size != end:
        return False
    if kind == 0x0A:  # bytes_list
        items: list[tuple[int, int]] = []
        while pos < end:
            if data[pos] != 0x0A:
                return False
            size, pos = _length(data, pos, end)
            if size < 0:
                return False
            items.append((pos, pos + size))
            pos += size
        fields.append((name, BYTES, tuple(items), 0))
        spans.extend(items)
        return True
    if kind not in _EMPTY_DTYPE:
        return False
    if pos == end:  # an empty float_list or int64_list
        fields.append((name, EMPTY, _EMPTY_DTYPE[kind], 0))
        return True
    if data[pos] != 0x0A:
        return False
    size, pos = _length(data, pos, end)
    if size <= 0 or pos + size != end or (kind == 0x12 and size % 4):
        return False
    fields.append((name, FLOAT if kind == 0x12 else INT, pos, end))
    spans.append((pos, end))
    return True


def _runs(data: bytes, spans: list[tuple[int, int]]) -> tuple[tuple[int, int, bytes], ...]:
    """The bytes of ``data`` outside ``spans``, as ``(start, stop, bytes)`` runs."""
    runs = []
    pos = 0
    for start, stop in sorted(spans):
        if start > pos:
            runs.append((pos, start, data[pos:start]))
        pos = max(pos, stop)
    if pos < len(data):
        runs.append((pos, len(data), data[pos:]))
    return tuple(runs)
