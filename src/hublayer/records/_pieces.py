"""Cut TFRecord files into the pieces Ray read tasks read, and frame a piece's records.

A piece is a whole file (any compression, read through :class:`~hublayer.records.Reader`)
or a byte range of a large plain file. Ranges start at record boundaries found by walking
the record headers once on the driver (the offset index, :func:`pieces_of`); a walk hops
from header to header and checks each length CRC, so it reads 12 bytes per record::

    file   | rec 0 | rec 1 | rec 2 | ... | rec k | rec k+1 | ... | rec n |
    piece  [ start=0, end=offset(k), first=0 )[ start=offset(k), first=k ) ...

In the task, :func:`piece_records` yields each record of a piece with its data CRC
checked; what it met and skipped is left in a :class:`PieceCounts` for the driver.
No Ray and no TensorFlow here.

Example:
    >>> from hublayer import testing
    >>> files = testing.image_records("/tmp/pieces/train", 8, shards=1)
    >>> [piece] = pieces_of([files.replace("*", "00000")], target_bytes=1 << 20)
    >>> counts = PieceCounts()
    >>> len(list(piece_records(piece, "raise", counts))), counts.records
    (8, 8)
"""

from __future__ import annotations

import logging
import mmap
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from hublayer.errors import RecordError
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
from hublayer.records._reader import Reader

__all__ = ["Piece", "PieceCounts", "piece_records", "pieces_of"]

logger = logging.getLogger("hublayer.records")


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
    last: bool = True  # whether the piece ends its file


@dataclass
class PieceCounts:
    """What reading one piece met: records framed in it, and how many were skipped."""

    records: int = 0  # every record of the piece, good or bad
    skipped: int = 0  # bad records (CRC, garbage run, kind) left out of the rows


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
        Piece(path, "", end - start, start, end, first, last - first, end == size)
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


def _range_records(
    piece: Piece, on_error: OnError, counts: PieceCounts
) -> Iterator[tuple[int, int, bytes]]:
    """``(index, offset, record)`` of a byte range of a plain file, each CRC checked."""
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
                counts.records += 1
                counts.skipped += 1
                if counts.skipped == 1:
                    logger.warning("%s", bad)
            else:
                counts.records += 1
                yield index, pos, data
            pos = data_end + FOOTER_SIZE
            index += 1


def piece_records(
    piece: Piece, on_error: OnError, counts: PieceCounts
) -> Iterator[tuple[int, int, bytes]]:
    """``(index, offset, record)`` of a piece; offsets are in the uncompressed stream."""
    if piece.end is not None:
        yield from _range_records(piece, on_error, counts)
        return
    with Reader(piece.path, compression=piece.compression, on_error=on_error) as reader:
        for data in reader:
            counts.records += 1
            index = reader.count + reader.skipped - 1
            yield index, reader.offset - len(data) - HEADER_SIZE - FOOTER_SIZE, data
        counts.records += reader.skipped
        counts.skipped += reader.skipped
        if reader.errors:
            logger.warning("%s", reader.errors[0])
