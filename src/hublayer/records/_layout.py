"""Record layouts: read the values of Examples that share a structure, one or many at once.

A :class:`Layout` is what a full parse of one serialized Example learned (see
:mod:`._wire`): the byte span of every value, and every other byte (tags, lengths,
feature names) as it was. Any record of the same size whose other bytes are equal
has its values at the same spans, so they are read from there:

- one record (:meth:`Layout.read`): a few slice comparisons, then one array per value;
- many records (:meth:`Layout.values_many`): the records stacked into one
  ``[records, size]`` uint8 block; one comparison checks the structure of all of them,
  and each column is cut from the block at once (float32 by a view of the bytes, varints
  by shifts and ORs over whole columns). Each record then gets rows of those columns:
  writable views, with the shapes and dtypes ``decode_example`` gives.

Example:
    >>> layout = Layout(((0, 2, b"ab"),), (("x", FLOAT, 2, 6),))
    >>> layout.values(b"ab" + np.float32(1.5).tobytes())
    {'x': array([1.5], dtype=float32)}
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["BYTES", "EMPTY", "FLOAT", "INT", "Field", "Layout", "int64s", "varint"]

# Kinds of a value in a layout.
FLOAT, INT, BYTES, EMPTY = 0, 1, 2, 3
_INT1, _INT2 = 4, 5  # INT whose list takes one or two bytes (read-side only)
#: One value: (name, kind, start, stop); for bytes ``start`` holds the spans of the
#: items, for an empty value the dtype.
Field = tuple[str, int, Any, int]

_F32 = np.dtype("<f4")
_I64 = np.dtype(np.int64)
_U64 = (1 << 64) - 1
_MANY = 24  # bytes of varints from which numpy checks them faster than a Python loop
_SMALL = tuple(np.array((v,), _I64) for v in range(128))  # templates, never handed out


def varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it; ``(-1, end)`` when malformed."""
    value = shift = 0
    while pos < end and shift < 70:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    return -1, end


def int64s(data: bytes, pos: int, end: int) -> np.ndarray | None:
    """The packed varints in ``data[pos:end]`` as int64 (two's complement), or None
    when malformed, or too many large values (``decode_example``'s C loop is faster)."""
    if end - pos == 1:
        byte = data[pos]
        return np.array((byte,), _I64) if byte < 0x80 else None
    if end - pos >= _MANY:
        raw = np.frombuffer(data, np.uint8, end - pos, pos)
        return raw.astype(_I64) if raw.max() < 0x80 else None
    values = []
    while pos < end:
        byte = data[pos]
        if byte < 0x80:  # one byte: 0..127
            values.append(byte)
            pos += 1
            continue
        value, pos = varint(data, pos, end)
        if value < 0:
            return None
        value &= _U64
        values.append(value - (1 << 64) if value >= 1 << 63 else value)
    return np.array(values, _I64)


def _int_column(block: np.ndarray, start: int, stop: int) -> np.ndarray | None:
    """An int64 list at ``[start, stop)`` of every row, as ``[rows, values]``; None when
    the rows need one varint decode each (values of several sizes in one list)."""
    raw = block[:, start:stop]
    if not (raw >= 0x80).any():  # one byte per value
        return raw.astype(_I64)
    size = stop - start
    if size > 10 or (raw[:, :-1] < 0x80).any() or (raw[:, -1] >= 0x80).any():
        return None
    value = np.zeros(len(block), np.uint64)  # one varint per row, `size` bytes each
    for j in range(size):
        value |= (raw[:, j] & 0x7F).astype(np.uint64) << np.uint64(7 * j)
    return value.view(_I64).reshape(-1, 1)


class Layout:
    """Where the values of records with one structure lie.

    Args:
        runs: the structure: ``(start, stop, bytes)`` of every byte outside the values.
        fields: the values, as :data:`Field` tuples, in the order a parse finds them.
    """

    __slots__ = ("_check", "_read", "_structure", "_unique", "fields", "runs", "structure")

    def __init__(self, runs: tuple[tuple[int, int, bytes], ...], fields: tuple[Field, ...]):
        self.runs = runs
        self.fields = fields
        # int64 lists of one or two bytes get their own kinds: the common labels and ids;
        # a float list keeps its count where the others keep their stop
        self._read = tuple(
            (name, {1: _INT1, 2: _INT2}.get(stop - start, INT), start, stop)
            if kind == INT
            else (name, kind, start, (stop - start) >> 2 if kind == FLOAT else stop)
            for name, kind, start, stop in fields
        )
        # one unpack gives every run of a record (the values skipped as pad bytes), so
        # one tuple comparison checks its structure
        pieces, pos = [], 0
        for start, stop, _ in runs:
            pieces.append(f"{start - pos}x{stop - start}s" if start > pos else f"{stop - start}s")
            pos = stop
        self._structure = struct.Struct("<" + "".join(pieces))
        self.structure = tuple(run for _, _, run in runs)
        self._check: tuple[np.ndarray, np.ndarray] | None = None
        self._unique = len({f[0] for f in fields}) == len(fields)

    def read(self, data: bytes, *, check: bool = True) -> dict[str, Any] | None:
        """The values of ``data`` (of this layout's size) if it has this structure
        (not compared with ``check=False``: a record known to match); else, or for a
        malformed int64 list, None. One call: ``src[i]`` spends most of its time here."""
        if check and self._structure.unpack_from(data) != self.structure:
            return None
        out: dict[str, Any] = {}
        for name, kind, start, stop in self._read:
            if kind == _INT1:  # one byte: one value in 0..127 (most labels)
                byte = data[start]
                if byte >= 0x80:
                    return None
                out[name] = _SMALL[byte].copy()  # a copy is faster than a new array
            elif kind == _INT2 and data[start] >= 0x80 and data[start + 1] < 0x80:
                value = _SMALL[0].copy()
                value[0] = (data[start] & 0x7F) | data[start + 1] << 7
                out[name] = value
            elif kind == FLOAT:
                out[name] = np.frombuffer(data, _F32, stop, start).copy()  # stop: count
            elif kind in (INT, _INT2):
                ints = int64s(data, start, stop)
                if ints is None:
                    return None
                out[name] = ints
            elif kind == BYTES:
                array = np.empty(len(start), dtype=object)
                array[:] = [data[a:b] for a, b in start]
                out[name] = array
            else:
                out[name] = np.zeros(0, start)
        return out

    def values(self, data: bytes) -> dict[str, Any] | None:
        """The values of one matching record; None for a malformed int64 list."""
        return self.read(data, check=False)

    def values_many(self, datas: Sequence[bytes]) -> list[dict[str, Any] | None]:
        """The values of records of this layout's size, each None where the record
        does not match (read it alone) or holds a malformed int64 list."""
        block = np.frombuffer(b"".join(datas), np.uint8).reshape(len(datas), -1)
        return self.values_block(block, datas.__getitem__)

    def values_block(
        self, block: np.ndarray, record: Callable[[int], bytes]
    ) -> list[dict[str, Any] | None]:
        """:meth:`values_many` for records already stacked in ``block`` (``[records,
        size]`` uint8); ``record(j)`` gives row ``j``'s bytes, for values read alone."""
        if not self._unique:  # a feature named twice: the last wins, record by record
            return [None] * len(block)
        if self._check is None:
            spans = [np.arange(a, b) for a, b, _ in self.runs]
            positions = np.concatenate(spans) if spans else np.zeros(0, np.intp)
            expected = np.frombuffer(b"".join(r for _, _, r in self.runs), np.uint8)
            self._check = positions.astype(np.intp), expected
        positions, expected = self._check
        good = np.flatnonzero((block[:, positions] == expected).all(axis=1))
        out: list[dict[str, Any] | None] = [None] * len(block)
        if not good.size:
            return out
        block = block[good]
        columns: list[tuple[str, Any]] = []
        each: list[Field] = []  # read record by record
        for field in self.fields:
            name, kind, start, stop = field
            if kind == FLOAT:
                raw = np.ascontiguousarray(block[:, start:stop])
                columns.append((name, raw.view(_F32).astype(np.float32, copy=False)))
            elif kind == INT and (column := _int_column(block, start, stop)) is not None:
                columns.append((name, column))
            else:
                each.append(field)
        found: list[dict[str, Any]] = [{} for _ in range(len(good))]
        for name, column in columns:  # a row of a column is a view, made in C
            for values, row in zip(found, column, strict=True):
                values[name] = row
        if each:
            alone = Layout(self.runs, tuple(each))
            for values, at in zip(found, good.tolist(), strict=True):
                rest = alone.read(record(at), check=False)
                if rest is None:
                    continue
                values.update(rest)
                out[at] = {name: values[name] for name, *_ in self.fields}
            return out
        for values, at in zip(found, good.tolist(), strict=True):
            out[at] = values
        return out
