"""The bytes under a :class:`~hublayer.records.Reader`: open, decompress, buffer, reposition.

:class:`ByteInput` owns the file and one buffer of its (uncompressed) stream: ``_buf``
holds the bytes from stream offset ``_base`` on, and ``_pos`` is the first one not yet
consumed. The record loop in :mod:`._reader` reads records out of that buffer and asks
:meth:`ByteInput._fill` for more.

A plain regular file is read with ``pread``: each chunk starts at the first byte still
needed, so no bytes are joined in Python (a little slower than reading through a memory
map on large records; its speed on the tabular shards is the ``framing`` case of
``benchmarks/RESULTS.md``). It is not memory-mapped on purpose: a mapped file that
another process truncates kills the reading process with SIGBUS. Here, a file that
shrinks while it is read raises :class:`RecordError`. A compressed file, a pipe or a
URL (through fsspec) is read in order, in chunks.

:meth:`ByteInput._seek` puts the stream at a record boundary already reached, and sees
how big the file is now: that is how a reader follows a file that is still growing.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "bytes")
    >>> _ = open(path, "wb").write(b"0123456789")
    >>> source = ByteInput(path, compression="").open()
    >>> source._fill(10), source._buf[source._pos :], source._fill(11)
    (True, b'0123456789', False)
    >>> source.close()
"""

from __future__ import annotations

import os
import stat
import zlib
from pathlib import Path
from typing import IO

from hublayer.errors import RecordError
from hublayer.records._files import file_size, is_url, local_path, open_file
from hublayer.records._framing import (
    HEADER_SIZE,
    Compression,
    detect_compression,
    normalize_compression,
    open_error,
)

__all__ = ["CHUNK", "ByteInput"]

CHUNK = 1 << 20  # bytes read at a time; big reads keep the per-record cost low


class ByteInput:
    """One file's uncompressed byte stream, buffered (see the module docstring).

    Args:
        path: a local path, or a URL read as a stream through fsspec.
        compression: ``""``, ``"GZIP"``, ``"ZLIB"``, or ``"auto"`` to detect on open.
        buffer_size: bytes read at a time.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        compression: Compression | str | None = "auto",
        buffer_size: int = CHUNK,
    ) -> None:
        #: the file: a Path, or the URL as given
        text = local_path(os.fspath(path))
        self.path: Path | str = text if is_url(text) else Path(text)
        self.buffer_size = max(int(buffer_size), HEADER_SIZE)
        self.compression = normalize_compression(compression)
        self.count = 0
        self.skipped = 0
        self._file: IO[bytes] | None = None
        self._stream: IO[bytes] | None = None
        self._inflate: zlib._Decompress | None = None
        #: the file ended inside a compressed stream: cut short, or still being written
        self._unfinished = False
        self._fed = False  # any compressed byte was read
        self._size: int | None = None  # a regular plain file's size, when last looked
        self._file_size: int | None = None  # a URL's size when opened
        self._buf = b""
        self._pos = 0
        self._base = 0
        self._eof = False

    def open(self) -> ByteInput:
        """Open the file (a no-op when open); returns self."""
        if self._file is not None:
            return self
        if self.compression == "auto":
            self.compression = detect_compression(self.path)
        try:
            self._file = open_file(self.path)
            if isinstance(self.path, str):  # a URL: no file descriptor, read in order
                self._file_size = file_size(self.path)
        except OSError as error:
            raise open_error(self.path, error) from error
        self._inflate = None
        self._size = None
        self._stream = self._file
        self._unfinished = self._fed = False
        if self.compression in ("GZIP", "ZLIB"):
            self._inflate = self._decompressor()
        elif self._file_size is None:
            info = os.fstat(self._file.fileno())
            # pread needs a regular file; a pipe or a device is read in order instead.
            self._size = info.st_size if stat.S_ISREG(info.st_mode) else None
        self._buf, self._pos, self._base, self._eof = b"", 0, 0, False
        return self

    def close(self) -> None:
        """Close the file; safe to call twice."""
        file = self._file
        self._stream = self._file = None
        self._buf = b""
        if file is not None:
            file.close()

    @property
    def offset(self) -> int:
        """Stream offset just past the last record read (or skipped)."""
        return self._base + self._pos

    def _seek(self, offset: int) -> None:
        """Continue reading at stream ``offset`` (a record boundary already reached),
        with the file's size as it is now: a plain file is read from there with
        ``pread``; any other stream is opened again and read up to there."""
        self.open()
        if self._size is not None and self._file is not None:
            self._size = os.fstat(self._file.fileno()).st_size
            self._buf, self._pos, self._base, self._eof = b"", 0, offset, False
            return
        if offset or self._base or self._pos or self._eof:
            self.close()
            self.open()
        while self.offset < offset:
            if not self._fill(1):
                return
            self._pos += min(len(self._buf) - self._pos, offset - self.offset)

    def _decompressor(self) -> zlib._Decompress:
        """A decompressor for one GZIP member or one ZLIB stream. Decompressing with zlib
        directly (not ``gzip.GzipFile``) returns what a stream still being written holds
        so far, instead of failing before its end."""
        return zlib.decompressobj(16 + zlib.MAX_WBITS if self.compression == "GZIP" else 15)

    def _read(self, size: int) -> bytes:
        """Up to ``size`` uncompressed bytes; fewer only at the end of the stream."""
        if self._stream is None:
            raise ValueError("Expected an open Reader. Use `with Reader(path) as reader:`.")
        try:
            if self._inflate is None:
                return self._stream.read(size)
            parts: list[bytes] = []
            have = 0
            inflate = self._inflate
            while have < size:
                if inflate.eof:  # after a GZIP member, the next one (ZLIB: one stream)
                    raw = inflate.unused_data
                    if self.compression != "GZIP" or not (
                        raw or (raw := self._stream.read(self.buffer_size))
                    ):
                        break
                    inflate = self._inflate = self._decompressor()
                else:
                    raw = inflate.unconsumed_tail or self._stream.read(self.buffer_size)
                    if not raw:  # the file ends inside the stream (cut short, or growing)
                        self._unfinished = self._fed
                        break
                self._fed = True
                part = inflate.decompress(raw, size - have)
                parts.append(part)
                have += len(part)
            return b"".join(parts)
        except (OSError, EOFError, zlib.error) as error:
            raise RecordError(
                f"Expected a valid {self.compression} stream in {str(self.path)!r}. "
                f"Received: {error} near uncompressed offset {self.offset}. "
                "The file is corrupt or has a different compression; pass compression=.",
                file=str(self.path),
                index=self.count + self.skipped,
                offset=self.offset,
            ) from error

    def _fail(self, error: RecordError) -> None:
        raise error

    def estimate_count(self) -> float:
        """The number of records in the whole file, estimated from those read so far.

        For a compressed file, the compression ratio seen so far scales the file size.
        """
        seen = self.count + self.skipped
        if not seen or not self.offset:
            return float(seen)
        if self._file is None or self._size is not None:
            stream_size = float(self._size or self.offset)
        else:
            size = self._file_size
            if size is None:
                size = os.fstat(self._file.fileno()).st_size
            ratio = (self._base + len(self._buf)) / max(self._compressed_read(), 1)
            stream_size = size * ratio
        return max(float(seen), seen * stream_size / self.offset)

    def _compressed_read(self) -> int:
        """Compressed bytes the decompressor has taken in: the file's position less what
        was read from it but is still waiting (input held back by ``max_length``, or the
        bytes after a GZIP member that ended). Read ahead of the stream, the file's
        position alone would understate the compression ratio."""
        if self._file is None:
            return 0
        waiting = 0
        if self._inflate is not None:
            waiting = len(self._inflate.unconsumed_tail)
            if self._inflate.eof:
                waiting += len(self._inflate.unused_data)
        return self._file.tell() - waiting

    def _fill(self, need: int) -> bool:
        """Make ``_buf[_pos:]`` hold at least ``need`` bytes; False at the end of stream."""
        have = len(self._buf) - self._pos
        if have >= need:
            return True
        if self._eof:
            return False
        want = max(self.buffer_size, need - have)
        if self._size is not None:
            return self._fill_plain(have + want, need)
        try:
            more = self._read(want)
        except RecordError as error:  # a broken compressed stream cannot be resynced
            self._fail(error)
            more, self._eof = b"", True
        if len(more) < want:
            self._eof = True
        self._base += self._pos
        self._buf = self._buf[self._pos :] + more
        self._pos = 0
        return len(self._buf) >= need

    def _fill_plain(self, size: int, need: int) -> bool:
        """:meth:`_fill` for a regular plain file: one ``pread`` of the bytes still
        needed and the next ones, never past the size the file had when last looked at
        (which also guards against garbage lengths)."""
        if self._file is None:
            raise ValueError("Expected an open Reader. Use `with Reader(path) as reader:`.")
        start = self._base + self._pos  # stream offset of the first byte still needed
        size = min(size, self._size - start) if self._size is not None else size
        if self._size is None or start + size >= self._size:
            self._eof = True
        parts, got = [], 0
        try:
            while got < size:
                part = os.pread(self._file.fileno(), size - got, start + got)
                if not part:
                    raise self._shrunk(start + got)
                parts.append(part)
                got += len(part)
        except OSError as error:
            raise open_error(self.path, error) from error
        self._base, self._pos = start, 0
        self._buf = parts[0] if len(parts) == 1 else b"".join(parts)
        return len(self._buf) >= need

    def _shrunk(self, offset: int) -> RecordError:
        now = os.fstat(self._file.fileno()).st_size if self._file is not None else offset
        return RecordError(
            f"Expected {str(self.path)!r} to keep its size while it is read. Received: it "
            f"shrank from {self._size:,} to {now:,} bytes; reading stopped at byte offset "
            f"{offset:,}. Another process truncated or rewrote it in place: read it again "
            "once it is complete (write a new file and rename it into place, as Writer "
            "does).",
            file=str(self.path),
            index=self.count + self.skipped,
            offset=offset,
        )
