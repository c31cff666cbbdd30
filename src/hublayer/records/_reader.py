"""Read TFRecord files: a CRC-checking reader that can skip bad records.

The record layout is documented in :mod:`hublayer.records._framing`.

Example:
    >>> import os, tempfile
    >>> from hublayer.records._writer import Writer
    >>> path = os.path.join(tempfile.mkdtemp(), "a.tfrecord")
    >>> with Writer(path) as writer:
    ...     writer.write(b"hello")
    >>> with Reader(path) as reader:
    ...     list(reader)
    [b'hello']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from types import TracebackType

import crc32c as _crc32c

from hublayer.errors import Fix, RecordError
from hublayer.records._files import Files, expand_files
from hublayer.records._framing import (
    FOOTER,
    FOOTER_SIZE,
    HEADER,
    HEADER_SIZE,
    MASK_DELTA,
    U32,
    Compression,
    OnError,
    masked_crc,
)
from hublayer.records._reader_input import CHUNK, ByteInput
from hublayer.records._resumable import Resumable

__all__ = ["Reader", "read_records"]

_MAX_KEPT_ERRORS = 100


class Reader(ByteInput):
    """Read the records of one TFRecord file, checking both CRCs of every record.

    Args:
        path: the file: a local path, or a URL (``gs://``, ``s3://``, ``memory://``...)
            read as a stream through fsspec (see :mod:`hublayer.records._files`).
        compression: ``""``, ``"GZIP"``, ``"ZLIB"``, or ``"auto"`` (the default) to detect.
        verify: check the CRCs. Turning it off is faster and only catches truncation.
        on_error: ``"raise"`` (the default) raises :class:`RecordError` at the first bad
            record; ``"skip"`` skips bad records, counts them in :attr:`skipped`, keeps
            the first 100 errors in :attr:`errors`, and goes on with the next good one.
        buffer_size: bytes read at a time from a compressed file.

    How the bytes are read (``pread`` for a plain file, in order for anything else) is
    described in :mod:`hublayer.records._reader_input`. A file that shrinks while it is
    read raises :class:`RecordError`, whatever ``on_error`` says.

    **Following a growing file** (a writer with ``Writer(..., atomic=False)``, TensorBoard
    style): ``iter(reader)`` returns an iterator that keeps its place. At the end of the
    file it raises ``StopIteration``, and ``next()`` on it later returns the records
    written since. With ``on_error="raise"``, a record cut short at the end raises
    :class:`RecordError` once the read has caught up to it, and the iterator stays at
    that record: after the writer finishes it, ``next()`` returns it. (As TensorFlow's
    ``tf_record_iterator``.) Each new ``iter(reader)`` (a new ``for`` loop) starts again
    from the first record; use one iteration at a time. A compressed file still
    being written ends inside its stream: that end raises :class:`RecordError` too (after
    the records before it), and the file is read again from its start on each retry.

    Attributes:
        skipped: how many bad records (or garbage runs) were skipped.
        count: how many records were returned.
        offset: stream offset just past the last record read.

    Raises:
        RecordError: the file is missing or unreadable (on entering), or a record is
            truncated, fails its CRC, or the compressed stream is corrupt (while
            iterating). The error carries ``file``, ``index`` (0-based record number) and
            ``offset`` (stream offset where the record starts).

    Example:
        >>> with Reader("train-00000-of-00004.tfrecord") as reader:  # doctest: +SKIP
        ...     for record in reader:
        ...         example = decode_example(record)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        compression: Compression | str | None = "auto",
        verify: bool = True,
        on_error: OnError = "raise",
        buffer_size: int = CHUNK,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(
                f'Expected on_error to be "raise" or "skip". Received: on_error={on_error!r}.'
            )
        super().__init__(path, compression=compression, buffer_size=buffer_size)
        self.verify = verify
        self.on_error = on_error
        self.errors: list[RecordError] = []

    # -- context manager -------------------------------------------------------------
    def open(self) -> Reader:
        """Open the file (done by ``with``); returns the reader."""
        super().open()
        return self

    def __enter__(self) -> Reader:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- errors ----------------------------------------------------------------------
    def _error(self, what: str, index: int, offset: int) -> RecordError:
        return RecordError(
            f"Expected a valid TFRecord record in {str(self.path)!r}. Received: {what} "
            f"in record {index} at byte offset {offset}. The file is truncated or corrupt.",
            fix=Fix(
                'Write it again, or read with on_error="skip" to skip bad records.',
                "Write it again; hublayer records inspect --on-error skip reads past bad records.",
            ),
            file=str(self.path),
            index=index,
            offset=offset,
        )

    def _fail(self, error: RecordError) -> None:
        if self.on_error == "raise":
            raise error
        self.skipped += 1
        if len(self.errors) < _MAX_KEPT_ERRORS:
            self.errors.append(error)

    def _resync(self) -> bool:
        """Move ``_pos`` to the next offset whose length CRC matches; False at the end.

        Used after a bad length CRC, when the length cannot be trusted. Only lengths
        below 2**40 are considered, so the 5 high bytes must be zero.
        """
        while self._fill(HEADER_SIZE):
            buf, pos = self._buf, self._pos
            last = len(buf) - HEADER_SIZE
            while pos <= last:
                found = buf.find(b"\x00\x00\x00\x00\x00", pos + 3, last + 8)
                if found < 0:
                    pos = last + 1
                    break
                candidate = found - 3
                if (
                    masked_crc(buf[candidate : candidate + 8])
                    == FOOTER.unpack_from(buf, candidate + 8)[0]
                ):
                    self._pos = candidate
                    return True
                pos = candidate + 1
            # Keep the bytes a header may still start in, then read more.
            self._pos = pos
            if not self._fill(len(buf) - pos + 1):
                return False
        return False

    # -- records ---------------------------------------------------------------------
    def __iter__(self) -> Iterator[bytes]:
        """An iterator over the records from the first one, that keeps its place at the
        end of the file and at a record cut short (see "Following a growing file")."""
        self.skipped, self.count, self.errors = 0, 0, []
        return _Follower(self)

    def _records(self, start: int, ended: Callable[[], None] | None = None) -> Iterator[bytes]:
        """The records from stream offset ``start`` (a record boundary) to the end of
        the file as it is now. With ``on_error="raise"``, a bad record raises with
        :attr:`offset` left at its start, so a later call retries it. ``ended`` is
        called as the pass ends, whether it returned or raised.

        The error index is ``count + skipped``: every record passed is one or the
        other, so no counter of its own runs on each record's path."""
        self._seek(start)
        raising = self.on_error == "raise"
        verify = self.verify
        unpack_header = HEADER.unpack_from
        unpack_footer = FOOTER.unpack_from
        crc32c = _crc32c.crc32c
        length_crcs: dict[int, int] = {}  # length -> its masked CRC; lengths repeat a lot
        buf, pos = self._buf, self._pos
        try:
            while True:
                if len(buf) - pos < HEADER_SIZE:
                    self._pos = pos
                    more = self._fill(HEADER_SIZE)
                    buf, pos = self._buf, self._pos
                    if not more:
                        if len(buf) > pos:
                            error = self._error(
                                "a truncated length header",
                                self.count + self.skipped,
                                self._base + pos,
                            )
                            self._pos = pos if raising else len(buf)
                            self._fail(error)
                        elif self._unfinished:
                            what = f"the end of the file inside the {self.compression} stream"
                            self._fail(
                                self._error(what, self.count + self.skipped, self._base + pos)
                            )
                        return
                length, length_crc = unpack_header(buf, pos)
                if verify and length_crcs.get(length) != length_crc:
                    if masked_crc(buf[pos : pos + 8]) != length_crc:
                        self._pos = pos
                        self._fail(
                            self._error(
                                "a length whose CRC does not match",
                                self.count + self.skipped,
                                self._base + pos,
                            )
                        )
                        self._pos = pos + 1
                        found = self._resync()
                        buf, pos = self._buf, self._pos
                        if not found:
                            return
                        continue
                    if len(length_crcs) >= 4096:
                        length_crcs.clear()
                    length_crcs[length] = length_crc
                end = pos + HEADER_SIZE + length
                if len(buf) < end + FOOTER_SIZE:
                    self._pos = pos
                    more = self._fill(HEADER_SIZE + length + FOOTER_SIZE)
                    buf, pos = self._buf, self._pos
                    if not more:
                        error = self._error(
                            f"a record of {length} bytes cut short",
                            self.count + self.skipped,
                            self._base + pos,
                        )
                        self._pos = pos if raising else len(buf)
                        self._fail(error)
                        return
                    end = pos + HEADER_SIZE + length
                data = buf[pos + HEADER_SIZE : end]
                start = pos
                pos = end + FOOTER_SIZE
                if verify:
                    c = crc32c(data)
                    if (((c >> 15 | c << 17) & U32) + MASK_DELTA) & U32 != unpack_footer(buf, end)[
                        0
                    ]:
                        self._pos = start if raising else pos
                        self._fail(
                            self._error(
                                "data whose CRC does not match",
                                self.count + self.skipped,
                                self._base + start,
                            )
                        )
                        continue
                self._pos = pos
                self.count += 1
                yield data
        finally:
            if ended is not None:
                ended()


class _Follower(Resumable):
    """The iterator of :meth:`Reader.__iter__`: the reader's records from the first."""

    __slots__ = ("_reader", "_started")

    def __init__(self, reader: Reader) -> None:
        super().__init__()
        self._reader = reader
        self._started = False

    def _pass(self, ended: Callable[[], None]) -> Iterator[bytes]:
        start = self._reader.offset if self._started else 0
        self._started = True
        return self._reader._records(start, ended)


class _FileRecords(Resumable):
    """The iterator of :func:`read_records`: each file's records in turn. A pass ends
    at the end of the last file or at an error: it closes the file it was in and keeps
    its place, so ``next()`` later returns what was appended since (or retries the
    record). The pass's state lives in a :class:`_Place` the generator holds, not in
    the iterator, so the generator refers to nothing that refers back to it."""

    __slots__ = ("_place",)

    def __init__(self, place: _Place) -> None:
        super().__init__()
        self._place = place

    def _pass(self, ended: Callable[[], None]) -> Iterator[bytes]:
        return _file_pass(self._place, ended)


class _Place:
    """Where :func:`read_records` stands: the files, the one being read, its reader."""

    __slots__ = ("compression", "file", "on_error", "paths", "reader", "verify")

    def __init__(
        self,
        paths: list[str],
        compression: Compression | str | None,
        verify: bool,
        on_error: OnError,
    ) -> None:
        self.paths = paths
        self.compression = compression
        self.verify = verify
        self.on_error: OnError = on_error
        self.file = 0
        self.reader: Reader | None = None


def _file_pass(place: _Place, ended: Callable[[], None]) -> Iterator[bytes]:
    """One pass of :class:`_FileRecords`, from where ``place`` stands."""
    try:
        while place.file < len(place.paths):
            reader = place.reader
            if reader is None:
                reader = place.reader = Reader(
                    place.paths[place.file],
                    compression=place.compression,
                    verify=place.verify,
                    on_error=place.on_error,
                )
                start = 0
            else:
                start = reader.offset
            yield from reader._records(start)
            if place.file + 1 == len(place.paths):
                return
            reader.close()
            place.file += 1
            place.reader = None
    finally:
        if place.reader is not None:
            place.reader.close()
        ended()


def read_records(
    files: Files,
    *,
    compression: Compression | str | None = "auto",
    verify: bool = True,
    on_error: OnError = "raise",
) -> Iterator[bytes]:
    """Yield the records of one or more files in order, checking CRCs.

    The iterator keeps its place as :class:`Reader`'s does: at the end of the last
    file, ``next()`` later returns records appended since; after a :class:`RecordError`
    it retries the record. No file is held open between calls that end that way.

    Args:
        files: a path, glob pattern, folder or URL, or a list of them (see
            :func:`~hublayer.records.expand_files`).
        compression, verify, on_error: as for :class:`Reader`.

    Raises:
        RecordError: as for :class:`Reader`.

    Example:
        >>> sum(1 for _ in read_records(["a.tfrecord", "b.tfrecord"]))  # doctest: +SKIP
        128
    """
    return _FileRecords(_Place(expand_files(files), compression, verify, on_error))
