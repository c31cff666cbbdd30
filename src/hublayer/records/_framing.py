"""TFRecord framing: read and write the record container, checking every CRC.

A TFRecord file is a sequence of records; each record is framed as (integers are
little-endian)::

    offset  size  field
    0       8     length            uint64, the number of data bytes
    8       4     length_crc        masked CRC32C of the 8 length bytes
    12      N     data              the record (usually a serialized tf.train.Example)
    12+N    4     data_crc          masked CRC32C of the data

    masked_crc(b) = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) mod 2**32,  crc = CRC32C(b)

A compressed file (``GZIP`` or ``ZLIB``) compresses this whole stream; offsets in errors
are positions in the uncompressed stream, which equal file offsets for plain files.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.tfrecord")
    >>> with Writer(path) as writer:
    ...     writer.write(b"hello")
    >>> with Reader(path) as reader:
    ...     list(reader)
    [b'hello']
"""

from __future__ import annotations

import gzip
import os
import secrets
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, TypeAlias

import crc32c as _crc32c

from hublayer.errors import RecordError

__all__ = [
    "Compression",
    "Reader",
    "Writer",
    "detect_compression",
    "masked_crc",
    "read_records",
    "shard_paths",
]

HEADER = struct.Struct("<QI")  # length, masked CRC of the length
FOOTER = struct.Struct("<I")  # masked CRC of the data
HEADER_SIZE = HEADER.size  # 12
FOOTER_SIZE = FOOTER.size  # 4
MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20  # bytes read at a time; big reads keep the per-record cost low
_MAX_KEPT_ERRORS = 100

#: "" for none, "GZIP" or "ZLIB" (TensorFlow's spellings); "auto" detects.
Compression: TypeAlias = Literal["", "GZIP", "ZLIB", "auto"]
OnError: TypeAlias = Literal["raise", "skip"]


def masked_crc(data: bytes | memoryview) -> int:
    """The masked CRC32C that TFRecord stores after the length and after the data.

    Example:
        >>> hex(masked_crc(b""))
        '0xa282ead8'
    """
    crc: int = _crc32c.crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & _U32) + MASK_DELTA) & _U32


def _normalize_compression(compression: str | None) -> str:
    value = (compression or "").upper()
    if value in ("", "NONE"):
        return ""
    if value in ("GZIP", "ZLIB", "AUTO"):
        return value.lower() if value == "AUTO" else value
    raise ValueError(
        'Expected compression to be one of "", "GZIP", "ZLIB" or "auto". '
        f"Received: compression={compression!r}."
    )


def detect_compression(path: str | os.PathLike[str]) -> str:
    """Guess a file's compression from its first bytes: ``""``, ``"GZIP"`` or ``"ZLIB"``.

    A valid plain record header wins; then the gzip magic number; then a zlib header.

    Raises:
        RecordError: when the file cannot be opened.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_SIZE)
    except OSError as error:
        raise _open_error(path, error) from error
    if len(head) == HEADER_SIZE and masked_crc(head[:8]) == HEADER.unpack(head)[1]:
        return ""
    if head.startswith(_GZIP_MAGIC):
        return "GZIP"
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
        return "ZLIB"
    return ""


def _open_error(path: str | os.PathLike[str], error: OSError) -> RecordError:
    reason = "no such file" if isinstance(error, FileNotFoundError) else str(error)
    return RecordError(
        f"Expected a readable TFRecord file at {os.fspath(path)!r}. Received: {reason}. "
        "Check the path and its permissions.",
        file=os.fspath(path),
    )


class Reader:
    """Read the records of one TFRecord file, checking both CRCs of every record.

    Args:
        path: the file.
        compression: ``""``, ``"GZIP"``, ``"ZLIB"``, or ``"auto"`` (the default) to detect.
        verify: check the CRCs. Turning it off is faster and only catches truncation.
        on_error: ``"raise"`` (the default) raises :class:`RecordError` at the first bad
            record; ``"skip"`` skips bad records, counts them in :attr:`skipped`, keeps
            the first 100 errors in :attr:`errors`, and goes on with the next good one.
        buffer_size: bytes read from the file at a time.

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
        buffer_size: int = _CHUNK,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(
                f'Expected on_error to be "raise" or "skip". Received: on_error={on_error!r}.'
            )
        self.path = Path(path)
        self.verify = verify
        self.on_error = on_error
        self.buffer_size = max(int(buffer_size), HEADER_SIZE)
        self.compression = _normalize_compression(compression)
        self.skipped = 0
        self.count = 0
        self.errors: list[RecordError] = []
        self._file: IO[bytes] | None = None
        self._stream: IO[bytes] | gzip.GzipFile | None = None
        self._inflate: zlib._Decompress | None = None
        self._size: int | None = None
        self._buf = b""
        self._pos = 0
        self._base = 0
        self._eof = False

    # -- context manager -------------------------------------------------------------
    def open(self) -> Reader:
        """Open the file (done by ``with``); returns the reader."""
        if self._file is not None:
            return self
        if self.compression == "auto":
            self.compression = detect_compression(self.path)
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as error:
            raise _open_error(self.path, error) from error
        if self.compression == "GZIP":
            self._stream = gzip.GzipFile(fileobj=self._file, mode="rb")
        else:
            self._stream = self._file
            if self.compression == "ZLIB":
                self._inflate = zlib.decompressobj()
            else:
                self._size = os.fstat(self._file.fileno()).st_size
        return self

    def close(self) -> None:
        """Close the file; safe to call twice."""
        stream, file = self._stream, self._file
        self._stream = self._file = None
        if stream is not None and stream is not file:
            stream.close()
        if file is not None:
            file.close()

    def __enter__(self) -> Reader:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------
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
            while have < size and not inflate.eof:
                raw = inflate.unconsumed_tail or self._stream.read(self.buffer_size)
                if not raw:
                    break
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

    def _error(self, what: str, index: int, offset: int) -> RecordError:
        return RecordError(
            f"Expected a valid TFRecord record in {str(self.path)!r}. Received: {what} "
            f"in record {index} at byte offset {offset}. The file is truncated or corrupt: "
            'write it again, or read with on_error="skip" to skip bad records.',
            file=str(self.path),
            index=index,
            offset=offset,
        )

    def _bad(self, what: str, index: int, offset: int) -> None:
        self._fail(self._error(what, index, offset))

    def _fail(self, error: RecordError) -> None:
        if self.on_error == "raise":
            raise error
        self.skipped += 1
        if len(self.errors) < _MAX_KEPT_ERRORS:
            self.errors.append(error)

    @property
    def offset(self) -> int:
        """Stream offset just past the last record read (or skipped)."""
        return self._base + self._pos

    def _fill(self, need: int) -> bool:
        """Make ``_buf[_pos:]`` hold at least ``need`` bytes; False at the end of stream."""
        have = len(self._buf) - self._pos
        if have >= need:
            return True
        if self._eof:
            return False
        want = max(self.buffer_size, need - have)
        start = self._base + len(self._buf)  # stream offset of the next byte to read
        if self._size is not None and start + want >= self._size:
            # A plain file: never ask for more than is left (guards garbage lengths).
            want = self._size - start
            self._eof = True
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

    def __iter__(self) -> Iterator[bytes]:
        self.open()
        self._buf, self._pos, self._base, self._eof = b"", 0, 0, False
        verify = self.verify
        unpack_header = HEADER.unpack_from
        unpack_footer = FOOTER.unpack_from
        crc32c = _crc32c.crc32c
        length_crcs: dict[int, int] = {}  # length -> its masked CRC; lengths repeat a lot
        index = 0
        buf, pos = self._buf, self._pos
        while True:
            if len(buf) - pos < HEADER_SIZE:
                self._pos = pos
                more = self._fill(HEADER_SIZE)
                buf, pos = self._buf, self._pos
                if not more:
                    if len(buf) > pos:
                        self._pos = len(buf)
                        self._fail(
                            self._error("a truncated length header", index, self._base + pos)
                        )
                    return
            length, length_crc = unpack_header(buf, pos)
            if verify and length_crcs.get(length) != length_crc:
                if masked_crc(buf[pos : pos + 8]) != length_crc:
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
                    start = self._base + pos
                    self._pos = len(buf)
                    self._bad(f"a record of {length} bytes cut short", index, start)
                    return
                end = pos + HEADER_SIZE + length
            data = buf[pos + HEADER_SIZE : end]
            start = pos
            pos = end + FOOTER_SIZE
            index += 1
            if verify:
                c = crc32c(data)
                if (((c >> 15 | c << 17) & _U32) + MASK_DELTA) & _U32 != unpack_footer(buf, end)[0]:
                    self._pos = pos
                    self._fail(
                        self._error("data whose CRC does not match", index - 1, self._base + start)
                    )
                    continue
            self._pos = pos
            self.count += 1
            yield data


def read_records(
    files: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    compression: Compression | str | None = "auto",
    verify: bool = True,
    on_error: OnError = "raise",
) -> Iterator[bytes]:
    """Yield the records of one or more files in order, checking CRCs.

    Args:
        files: a path, or an iterable of paths (expand patterns first).
        compression, verify, on_error: as for :class:`Reader`.

    Raises:
        RecordError: as for :class:`Reader`.

    Example:
        >>> sum(1 for _ in read_records(["a.tfrecord", "b.tfrecord"]))  # doctest: +SKIP
        128
    """
    paths = [files] if isinstance(files, str | os.PathLike) else list(files)
    for path in paths:
        with Reader(path, compression=compression, verify=verify, on_error=on_error) as reader:
            yield from reader


def shard_paths(path: str | os.PathLike[str], shards: int | None) -> tuple[Path, ...]:
    """The file names a :class:`Writer` uses: ``out-00000-of-00008.tfrecord`` and so on.

    Args:
        path: the output; its ``.tfrecord`` suffix (or ``.tfrecords``, ``.tfr``) is kept,
            any other name gets ``.tfrecord`` appended after the shard numbers.
        shards: the number of shards, or None for exactly one file at ``path``.

    Example:
        >>> [p.name for p in shard_paths("data/out", 2)]
        ['out-00000-of-00002.tfrecord', 'out-00001-of-00002.tfrecord']
    """
    target = Path(path)
    if shards is None:
        return (target,)
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(
            f"Expected shards to be a positive int or None. Received: shards={shards!r}."
        )
    stem, suffix = target.name, ".tfrecord"
    for known in (".tfrecord", ".tfrecords", ".tfr"):
        if stem.endswith(known):
            stem, suffix = stem[: -len(known)], known
            break
    return tuple(target.with_name(f"{stem}-{i:05d}-of-{shards:05d}{suffix}") for i in range(shards))


class _Sink:
    """One shard being written: a temp file, an optional compressor, a write buffer."""

    def __init__(self, final: Path, compression: str) -> None:
        self.final = final
        self.temp = final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        self.file: IO[bytes] = open(self.temp, "wb")  # noqa: SIM115 - closed in commit/abort
        self.gzip = (
            gzip.GzipFile(filename="", fileobj=self.file, mode="wb", mtime=0)
            if compression == "GZIP"
            else None
        )
        self.deflate = zlib.compressobj() if compression == "ZLIB" else None
        self.parts: list[bytes] = []
        self.pending = 0

    def write(self, *parts: bytes) -> None:
        self.parts.extend(parts)
        self.pending += sum(len(p) for p in parts)
        if self.pending >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        data = b"".join(self.parts)
        self.parts.clear()
        self.pending = 0
        if self.gzip is not None:
            self.gzip.write(data)
        elif self.deflate is not None:
            self.file.write(self.deflate.compress(data))
        else:
            self.file.write(data)

    def commit(self) -> None:
        self.flush()
        if self.gzip is not None:
            self.gzip.close()
        if self.deflate is not None:
            self.file.write(self.deflate.flush())
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.temp, self.final)

    def abort(self) -> None:
        try:
            self.file.close()
        finally:
            self.temp.unlink(missing_ok=True)


class Writer:
    """Write records to one file or to N shards, each file atomically.

    Every shard is written to a temp name in the same folder and renamed into place
    when the writer closes without error, so readers never see half a file. When the
    ``with`` block raises, the temp files are removed and nothing is renamed. The folder
    is created when missing. Records go to shards in turn (record ``i`` to shard
    ``i % shards``), so shards differ in size by at most one record.

    Args:
        path: the output file, or the name the shard names are built from (see
            :func:`shard_paths`).
        shards: the number of shards, or None (the default) for one file at ``path``.
        compression: ``""`` (the default), ``"GZIP"`` or ``"ZLIB"``.

    Attributes:
        paths: the final file names.
        count: records written so far.
        nbytes: uncompressed bytes written so far, framing included.

    Raises:
        ValueError: for a bad ``shards`` or ``compression``.
        OSError: when the folder cannot be created or written to.

    Example:
        >>> with Writer("data/train", shards=4) as writer:  # doctest: +SKIP
        ...     for record in records:
        ...         writer.write(record)
        >>> [p.name for p in writer.paths]  # doctest: +SKIP
        ['train-00000-of-00004.tfrecord', ..., 'train-00003-of-00004.tfrecord']
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        shards: int | None = None,
        compression: Literal["", "GZIP", "ZLIB"] | str | None = "",
    ) -> None:
        self.compression = _normalize_compression(compression)
        if self.compression == "auto":
            raise ValueError(
                'Expected compression to be "", "GZIP" or "ZLIB" when writing. '
                'Received: compression="auto".'
            )
        self.paths = shard_paths(path, shards)
        self.paths[0].parent.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self.nbytes = 0
        self._sinks: list[_Sink] = []
        try:
            for final in self.paths:
                self._sinks.append(_Sink(final, self.compression))
        except BaseException:
            self.abort()
            raise
        self._closed = False

    def write(self, record: bytes) -> None:
        """Append one record (bytes) to the next shard."""
        if self._closed:
            raise ValueError("Expected an open Writer. Received: write() after close().")
        data = bytes(record)
        length = struct.pack("<Q", len(data))
        sink = self._sinks[self.count % len(self._sinks)]
        sink.write(
            length + struct.pack("<I", masked_crc(length)), data, FOOTER.pack(masked_crc(data))
        )
        self.count += 1
        self.nbytes += len(data) + HEADER_SIZE + FOOTER_SIZE

    def close(self) -> None:
        """Finish every shard and rename it into place; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            for sink in self._sinks:
                sink.commit()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop every shard not yet renamed into place."""
        self._closed = True
        for sink in self._sinks:
            if sink.temp.exists():
                sink.abort()

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
