"""Write TFRecord files: one file or N shards, each written to a temp name then renamed,
or (``atomic=False``) in place, so a follower reads the records as they are flushed.

The record layout is documented in :mod:`hublayer.records._framing`.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import secrets
import struct
import zlib
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from hublayer.records._framing import (
    FOOTER,
    FOOTER_SIZE,
    HEADER_SIZE,
    masked_crc,
    normalize_compression,
)

__all__ = ["Writer", "shard_paths"]

_FLUSH = 1 << 20  # bytes buffered before a write to the file (or compressor)


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
    """One shard being written: a file (a temp name, or the final one in place), an
    optional compressor, a write buffer."""

    def __init__(self, final: Path, compression: str, *, atomic: bool) -> None:
        self.final = final
        self.atomic = atomic
        self.temp = (
            final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
            if atomic
            else final
        )
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
        if self.pending >= _FLUSH:
            self.drain()

    def drain(self) -> None:
        """Hand the buffered bytes to the compressor or the file object."""
        data = b"".join(self.parts)
        self.parts.clear()
        self.pending = 0
        if self.gzip is not None:
            self.gzip.write(data)
        elif self.deflate is not None:
            self.file.write(self.deflate.compress(data))
        else:
            self.file.write(data)

    def flush(self) -> None:
        """Every record written so far into the file, whole (a compressed stream is
        flushed to a byte boundary, so a reader can decode up to here)."""
        self.drain()
        if self.gzip is not None:
            self.gzip.flush(zlib.Z_SYNC_FLUSH)
        elif self.deflate is not None:
            self.file.write(self.deflate.flush(zlib.Z_SYNC_FLUSH))
        self.file.flush()

    def commit(self) -> None:
        self.drain()
        if self.gzip is not None:
            self.gzip.close()
        if self.deflate is not None:
            self.file.write(self.deflate.flush())
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        if self.atomic:
            os.replace(self.temp, self.final)

    def abort(self) -> None:
        if not self.atomic:  # followers may have read it: finish what was written
            self.commit()
            return
        try:
            self.file.close()
        finally:
            self.temp.unlink(missing_ok=True)


class Writer:
    """Write records to one file or to N shards, each file atomically (by default).

    By default (``atomic=True``) every shard is written to a temp name in the same
    folder and renamed into place when the writer closes without error, so readers never
    see half a file: the way to write a complete shard set. When the ``with`` block
    raises, the temp files are removed and nothing is renamed.

    ``atomic=False`` is the streaming mode, for a long-running writer (a log of events,
    TensorBoard style): each shard is written in place at its final name (an existing
    file is replaced, as TensorFlow's ``TFRecordWriter`` does), and :meth:`flush` makes
    every record written so far readable there, so a :class:`~hublayer.records.Reader`
    can follow the file as it grows. When the ``with`` block raises, what was written is
    kept and closed properly (a follower may have read it already). A crash can leave a
    last record cut short, which a reader reports as a truncated record.

    The folder is created when missing. Records go to shards in turn (record ``i`` to
    shard ``i % shards``), so shards differ in size by at most one record.

    Args:
        path: the output file, or the name the shard names are built from (see
            :func:`shard_paths`).
        shards: the number of shards, or None (the default) for one file at ``path``.
        compression: ``""`` (the default), ``"GZIP"`` or ``"ZLIB"``.
        atomic: True (the default) writes temp files renamed into place on close; False
            writes in place, readable after each :meth:`flush`.

    Attributes:
        paths: the final file names.
        count: records written so far.
        nbytes: uncompressed bytes written so far, framing included.

    Raises:
        ValueError: for a bad ``shards`` or ``compression``; :meth:`write` or
            :meth:`flush` after :meth:`close`.
        OSError: when the folder cannot be created or written to.

    Example:
        >>> with Writer("data/train", shards=4) as writer:  # doctest: +SKIP
        ...     for record in records:
        ...         writer.write(record)
        >>> [p.name for p in writer.paths]  # doctest: +SKIP
        ['train-00000-of-00004.tfrecord', ..., 'train-00003-of-00004.tfrecord']

        Streaming, with a follower reading as records arrive:

        >>> writer = Writer("logs/events.tfrecord", atomic=False)  # doctest: +SKIP
        >>> writer.write(event); writer.flush()  # doctest: +SKIP
        >>> follower = iter(Reader("logs/events.tfrecord"))  # doctest: +SKIP
        >>> next(follower) == event  # doctest: +SKIP
        True
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        shards: int | None = None,
        compression: Literal["", "GZIP", "ZLIB"] | str | None = "",
        atomic: bool = True,
    ) -> None:
        self.compression = normalize_compression(compression)
        if self.compression == "auto":
            raise ValueError(
                'Expected compression to be "", "GZIP" or "ZLIB" when writing. '
                'Received: compression="auto".'
            )
        self.atomic = bool(atomic)
        self.paths = shard_paths(path, shards)
        self.paths[0].parent.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self.nbytes = 0
        self._sinks: list[_Sink] = []
        try:
            for final in self.paths:
                self._sinks.append(_Sink(final, self.compression, atomic=self.atomic))
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

    def flush(self) -> None:
        """Push every record written so far into the files.

        With ``atomic=False`` they are then readable at :attr:`paths` (a compressed
        stream is flushed to a byte boundary). With ``atomic=True`` they reach the temp
        files, which are renamed into place only by :meth:`close`.

        Raises:
            ValueError: the writer is closed (as TensorFlow's ``TFRecordWriter.flush``
                raises after ``close``).
        """
        if self._closed:
            raise ValueError("Expected an open Writer. Received: flush() after close().")
        for sink in self._sinks:
            sink.flush()

    def close(self) -> None:
        """Finish every shard (and rename it into place); safe to call twice."""
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
        """Drop every shard not yet renamed into place (``atomic=False``: close every
        shard, keeping the records written)."""
        self._closed = True
        for sink in self._sinks:
            if not sink.file.closed or (sink.atomic and sink.temp.exists()):
                sink.abort()

    def __del__(self) -> None:
        """A writer dropped without :meth:`close` (TensorFlow allows it) leaves no temp
        file behind; in streaming mode its records are kept, as on an error."""
        if getattr(self, "_closed", True):
            return
        with contextlib.suppress(Exception):
            self.abort()

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
