"""The files of a :class:`~hublayer.records.Source`: opened on first use in each process.

Each file gets a descriptor for ``pread`` (one record: ``src[i]``) and, for batches
(``__getitems__``), a read-only memory map, which reads a record for less CPU than a
``pread`` call. A mapped file that another process truncates kills the reader with
SIGBUS (which is why :class:`~hublayer.records.Reader` never maps), so before each batch
the files it touches are checked to still hold every indexed byte; what remains is a
truncation *during* one batch (a fraction of a millisecond). Writers that replace files
by renaming (hublayer's ``Writer``, ``tf.io.TFRecordWriter`` to a new name) never do
that: the old file lives on, unchanged, while it is mapped.

Opening checks that the file still has the size it was indexed at (a file rewritten
with other records is refused; one changed in place at the same size is read, each
record's length and CRCs checked as always, so damage shows where it is); a descriptor
or map is never pickled: a copy opens its own where it is used.

Example:
    >>> files = OpenFiles(("a.tfrecord",), [(1024, 0)])  # doctest: +SKIP
    >>> os.pread(files.fd(0), 16, 0)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
from collections.abc import Iterable
from typing import Any

from hublayer.errors import RecordError

__all__ = ["OpenFiles"]


class OpenFiles:
    """Descriptors and maps of files, opened lazily and checked against their index.

    Args:
        files: the file paths.
        identities: ``(size, mtime_ns)`` of each file when it was indexed.
    """

    def __init__(self, files: tuple[str, ...], identities: list[tuple[int, int]]) -> None:
        self.files = files
        self.identities = identities
        self._reset()

    def _reset(self) -> None:
        #: each file's descriptor once opened (read it, then call :meth:`fd` on None)
        self.fds: list[int | None] = [None] * len(self.files)
        self._maps: list[mmap.mmap | None] = [None] * len(self.files)
        self._lock = threading.Lock()

    def fd(self, file: int) -> int:
        """The descriptor of file number ``file``, opened (and checked) on first use."""
        fd = self.fds[file]
        if fd is None:
            with self._lock:
                fd = self.fds[file]
                if fd is None:
                    fd = self.fds[file] = self._open(file)
        return fd

    def maps(self, touched: Iterable[int]) -> list[mmap.mmap | None]:
        """The maps of all files, those in ``touched`` mapped and checked to still hold
        every indexed byte.

        Raises:
            RecordError: a file that shrank since it was indexed.
        """
        maps = self._maps
        for file in touched:
            mapped = maps[file]
            if mapped is None:
                fd = self.fd(file)
                with self._lock:
                    if maps[file] is None:
                        maps[file] = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            elif mapped.size() < self.identities[file][0]:
                raise self.changed(file, mapped.size())
        return maps

    def _open(self, file: int) -> int:
        path = self.files[file]
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as error:
            raise RecordError(
                f"Expected the TFRecord file {path!r} of this source to be readable. "
                f"Received: {error}. Was it moved or deleted? Make the Source again.",
                file=path,
            ) from error
        size = os.fstat(fd).st_size
        if size != self.identities[file][0]:
            os.close(fd)
            raise self.changed(file, size)
        return fd

    def changed(self, file: int, size: int) -> RecordError:
        path = self.files[file]
        return RecordError(
            f"Expected {path!r} to be the file this source indexed. Received: it changed "
            f"(now {size:,} bytes; the index is for {self.identities[file][0]:,}). Make the "
            "Source again: its index is rebuilt.",
            file=path,
        )

    def close(self) -> None:
        """Close every descriptor and map (a later read opens them again)."""
        with self._lock:
            fds, maps = self.fds, self._maps
            self.fds, self._maps = [None] * len(self.files), [None] * len(self.files)
        for mapped in maps:
            if mapped is not None:
                with contextlib.suppress(BufferError):  # a view still exported
                    mapped.close()
        for fd in fds:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def __del__(self) -> None:
        if hasattr(self, "_fds"):
            self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"files": self.files, "identities": self.identities}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.files, self.identities = state["files"], state["identities"]
        self._reset()
