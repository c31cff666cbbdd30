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

import functools
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

    def _records(self, start: int) -> Iterator[bytes]:
        """The records from stream offset ``start`` (a record boundary) to the end of
        the file as it is now. With ``on_error="raise"``, a bad record raises with
        :attr:`offset` left at its start, so a later call retries it."""
        self._seek(start)
        raising = self.on_error == "raise"
        verify = self.verify
        unpack_header = HEADER.unpack_from
        unpack_footer = FOOTER.unpack_from
        crc32c = _crc32c.crc32c
        length_crcs: dict[int, int] = {}  # length -> its masked CRC; lengths repeat a lot
        index = self.count + self.skipped
        buf, pos = self._buf, self._pos
        while True:
            if len(buf) - pos < HEADER_SIZE:
                self._pos = pos
                more = self._fill(HEADER_SIZE)
                buf, pos = self._buf, self._pos
                if not more:
                    if len(buf) > pos:
                        error = self._error("a truncated length header", index, self._base + pos)
                        self._pos = pos if raising else len(buf)
                        self._fail(error)
                    elif self._unfinished:
                        what = f"the end of the file inside the {self.compression} stream"
                        self._fail(self._error(what, index, self._base + pos))
                    return
            length, length_crc = unpack_header(buf, pos)
            if verify and length_crcs.get(length) != length_crc:
                if masked_crc(buf[pos : pos + 8]) != length_crc:
                    self._pos = pos
                    self._fail(
                        self._error("a length whose CRC does not match", index, self._base + pos)
                    )
                    index += 1
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
                        f"a record of {length} bytes cut short", index, self._base + pos
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
                if (((c >> 15 | c << 17) & U32) + MASK_DELTA) & U32 != unpack_footer(buf, end)[0]:
                    self._pos = start if raising else pos
                    self._fail(
                        self._error("data whose CRC does not match", index, self._base + start)
                    )
                    index += 1
                    continue
            index += 1
            self._pos = pos
            self.count += 1
            yield data


class _Follower:
    """The iterator of :meth:`Reader.__iter__`: the records in order, resumable after
    ``StopIteration`` (the file grew) and after a :class:`RecordError` (retried).

    ``_next`` is the running pass's ``__next__`` (bound once: this call sits on every
    record's path), or :meth:`_start` when no pass runs."""

    __slots__ = ("_next", "_reader")

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self._next: Callable[[], bytes] = functools.partial(self._start, 0)

    def __iter__(self) -> _Follower:
        return self

    def _start(self, offset: int) -> bytes:
        self._next = self._reader._records(offset).__next__
        return self._next()

    def __next__(self) -> bytes:
        try:
            return self._next()
        except BaseException:
            self._next = functools.partial(self._start, self._reader.offset)
            raise


class _FileRecords:
    """The iterator of :func:`read_records`: each file's records in turn; at the end of
    the last file (or at an error) it closes the file and keeps its place, so ``next()``
    later returns what was appended since (or retries the record)."""

    def __init__(
        self,
        paths: list[str],
        compression: Compression | str | None,
        verify: bool,
        on_error: OnError,
    ) -> None:
        self._paths = paths
        self._compression = compression
        self._verify = verify
        self._on_error: OnError = on_error
        self._file = 0
        self._reader: Reader | None = None
        self._records: Iterator[bytes] | None = None

    def __iter__(self) -> _FileRecords:
        return self

    def __del__(self) -> None:  # a loop left early: close the file it was in
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.close()

    def __next__(self) -> bytes:
        while True:
            if self._reader is None or self._records is None:
                self._reader = Reader(
                    self._paths[self._file],
                    compression=self._compression,
                    verify=self._verify,
                    on_error=self._on_error,
                )
                self._records = iter(self._reader)
            try:
                return next(self._records)
            except StopIteration:
                self._reader.close()
                if self._file + 1 >= len(self._paths):
                    raise
                self._file += 1
                self._reader = self._records = None
            except BaseException:
                self._reader.close()
                raise


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
    return _FileRecords(expand_files(files), compression, verify, on_error)
