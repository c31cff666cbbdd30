"""Read a batch of records as numpy blocks: the framing checks of many records at once.

``Source.__getitems__`` groups the records of a batch by frame size. The frames of a
group (small records, 8 or more of them) are sliced from their files' maps and joined
into one ``[records, size]`` uint8 block, and their framing is checked column by
column: every record of one size has the same 8 length bytes and the same length CRC, so
one comparison checks both for the whole group; the data CRCs are computed one call per
record (CRC32C has no batch form) and compared with the stored ones in one step. The
data columns then go to the decoder as one block (see :mod:`._layout`). Records of
other groups are read one by one, as ``src[i]`` reads them.

A record that fails any check is read again alone, which raises the
:class:`~hublayer.errors.RecordError` that names it.

Example:
    >>> frames = frame(b"abc") + frame(b"xyz")
    >>> block = Block([0, 1], len(frame(b"abc")), frames)
    >>> bad_rows(block), block.record(1)
    ([], b'xyz')
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from crc32c import crc32c

from hublayer.records._framing import FOOTER, MASK_DELTA, masked_crc

__all__ = ["MAX_SIZE", "MIN_ROWS", "Block", "bad_rows", "blocks", "frame"]

MIN_ROWS = 8  # records of one file and size from which they are read as a block
MAX_SIZE = 16 << 10  # frames above this size are read one by one (the copy dominates)
_U32 = np.uint64(0xFFFFFFFF)


def frame(data: bytes) -> bytes:
    """``data`` framed as a TFRecord record (for tests and examples)."""
    length = struct.pack("<Q", len(data))
    return length + FOOTER.pack(masked_crc(length)) + data + FOOTER.pack(masked_crc(data))


@dataclass(frozen=True)
class Block:
    """Frames of one size, joined.

    Attributes:
        rows: where each frame's record stands in the batch.
        size: the frame size (data length + 16).
        frames: the frames, one after another.
    """

    rows: list[int]
    size: int
    frames: bytes

    @property
    def array(self) -> np.ndarray:
        """The frames as a ``[records, size]`` uint8 array (a view of ``frames``)."""
        return np.frombuffer(self.frames, np.uint8).reshape(len(self.rows), self.size)

    @property
    def data(self) -> np.ndarray:
        """The records' data: ``[records, size - 16]``, a view."""
        return self.array[:, 12 : self.size - 4]

    def record(self, j: int) -> bytes:
        """Row ``j``'s data."""
        start = j * self.size
        return self.frames[start + 12 : start + self.size - 4]

    def frame(self, j: int) -> bytes:
        """Row ``j``'s whole frame."""
        return self.frames[j * self.size : (j + 1) * self.size]


def blocks(
    maps: Sequence[Any], files: np.ndarray, offsets: np.ndarray, sizes: np.ndarray
) -> tuple[list[Block], list[int]]:
    """The batch's rows grouped into blocks, and the rows left to read one by one.

    Args:
        maps: each file's memory map (those of ``files`` mapped).
        files, offsets, sizes: int64 arrays: each row's file number, frame offset and
            frame size.
    """
    kinds, which = np.unique(sizes, return_inverse=True)
    single = maps[int(files[0])] if len(files) and (files == files[0]).all() else None
    out: list[Block] = []
    alone: list[int] = []
    for kind, size in enumerate(kinds.tolist()):
        rows = np.flatnonzero(which == kind)
        if len(rows) < MIN_ROWS or size > MAX_SIZE or size < 16:
            alone.extend(rows.tolist())
            continue
        starts = offsets[rows].tolist()
        if single is not None:
            joined = b"".join([single[o : o + size] for o in starts])
        else:
            at = files[rows].tolist()
            joined = b"".join([maps[f][o : o + size] for f, o in zip(at, starts, strict=True)])
        if len(joined) != size * len(rows):  # the file shrank: read alone, which says so
            alone.extend(rows.tolist())
            continue
        out.append(Block(rows.tolist(), size, joined))
    return out, alone


def bad_rows(block: Block) -> list[int]:
    """The rows of ``block`` (positions in it) whose length, length CRC or data CRC do
    not match."""
    size, frames = block.size, block.frames
    length = struct.pack("<Q", size - 16)
    head = np.frombuffer(length + FOOTER.pack(masked_crc(length)), np.uint8)
    array = block.array
    good = (array[:, :12] == head).all(axis=1)
    crcs = np.array(
        [crc32c(frames[start + 12 : start + size - 4]) for start in range(0, len(frames), size)],
        np.uint64,
    )
    masked = (((crcs >> np.uint64(15)) | (crcs << np.uint64(17))) & _U32) + np.uint64(MASK_DELTA)
    stored = np.ascontiguousarray(array[:, size - 4 :]).view("<u4")[:, 0]
    good &= (masked & _U32) == stored
    return np.flatnonzero(~good).tolist()  # type: ignore[no-any-return]
