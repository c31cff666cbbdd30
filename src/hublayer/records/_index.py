"""``records.index``: where every record of a TFRecord file starts, for random access.

An index is a text file with one line per record, ``offset size``, both in bytes: where
the record's frame starts and how long the whole frame is (12 header bytes, the data,
4 CRC bytes; see :mod:`._framing`)::

    0 115
    115 115
    230 98

That is byte for byte what NVIDIA DALI's ``tfrecord2idx`` and the ``tfrecord`` package's
``create_index`` write, so the three share indexes (DALI's ``index_path``, the
``tfrecord`` package's ``index_path``). hublayer names it ``<file>.idx`` beside the file
(the ``tfrecord`` package's own batch tool writes ``<stem>.tfindex``; pass that path to
it if you use both).

Where indexes live, and how hublayer knows one is current::

    data/train-00000.tfrecord
    data/train-00000.tfrecord.idx        beside the file, when its folder is writable
    <cache>/records-index/
    ├── files/<sha256(file path)[:16]>/train-00000.tfrecord.idx
    │                                    when the data folder is read-only
    └── stamps/<sha256(index path)[:32]>.json
                                         the file's size and mtime, and the index's,
                                         when hublayer last wrote or checked the index

The stamp stays out of the index, so the index stays byte-identical to DALI's. An
index is used as it is only when its stamp matches both files now; any other index
(stale, foreign, or stamped on another machine) is checked against a fresh scan of the
file: equal, it is stamped and used; different, hublayer rebuilds an index it wrote
itself, and refuses to replace any other without ``overwrite=True``. A scan reads
every record header and checks its length CRC (the data CRCs are checked on every
read, by :class:`~hublayer.records.Source`). A length whose CRC does not match cannot
say where its record ends: the entry runs up to the next header whose length CRC
matches (searched byte by byte, as :class:`~hublayer.records.Reader` resyncs), so
reading that entry raises :class:`~hublayer.errors.RecordError` and the records after
it still read. A record cut short at the end of the file is refused.

``<cache>`` is ``config.cache_dir()`` (``$HUBLAYER_CACHE_DIR``, else ``~/.cache/hublayer``).

Example:
    >>> from hublayer import records
    >>> records.index("data/train-*.tfrecord")  # doctest: +SKIP
    [PosixPath('data/train-00000.tfrecord.idx'), PosixPath('data/train-00001.tfrecord.idx')]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hublayer import config
from hublayer.errors import Fix, RecordError
from hublayer.records._files import Files, expand_files, is_url
from hublayer.records._framing import HEADER, HEADER_SIZE, detect_compression, masked_crc

__all__ = ["SUFFIX", "FileIndex", "index", "load_indexes"]

#: The suffix hublayer's indexes get after the file's own name.
SUFFIX = ".idx"
_FRAME = HEADER_SIZE + 4  # header + data CRC: a frame is this plus the data
_CHUNK = 1 << 20
_BIG = 64 << 10  # past this record size, read each header alone instead of chunks
_STAMP_VERSION = 1


@dataclass(frozen=True)
class FileIndex:
    """The records of one file, from its index.

    Attributes:
        file: the TFRecord file.
        path: its index file.
        offsets: int64 array, where each record's frame starts.
        sizes: int64 array, each frame's size (data length + 16).
        file_size, mtime_ns: the file's size and modification time the index matches.
    """

    file: str
    path: Path
    offsets: np.ndarray
    sizes: np.ndarray
    file_size: int
    mtime_ns: int

    def __len__(self) -> int:
        return len(self.offsets)


def _fix_overwrite() -> Fix:
    return Fix(
        "Pass overwrite=True to records.index to replace it.",
        "Pass --overwrite to hublayer records index to replace it.",
    )


def _check_local(file: str) -> None:
    if is_url(file):
        raise RecordError(
            f"Expected a local TFRecord file to index. Received: {file!r}, a URL. Random "
            "access reads local files only: copy the files to a local disk first.",
            file=file,
        )
    compression = detect_compression(file)
    if compression:
        raise RecordError(
            f"Expected an uncompressed TFRecord file. Received: {file!r}, compressed with "
            f"{compression}. A compressed stream cannot be read at random places.",
            fix=Fix(
                "Write an uncompressed copy: records.convert_records(files, out), or `hublayer "
                "records convert records FILES... OUT --compression none`.",
                "Write an uncompressed copy: hublayer records convert records FILES... OUT "
                "--compression none.",
            ),
            file=file,
        )


def _scan(file: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and frame sizes of every record of ``file`` (``size`` bytes), checking
    each length CRC, as the index lists them."""
    offsets, sizes = array("q"), array("q")
    crcs: dict[int, int] = {}
    with open(file, "rb", buffering=0) as f:
        fd = f.fileno()
        buf, base, pos, frame = b"", 0, 0, 0
        while pos < size:
            at = pos - base
            if at + HEADER_SIZE > len(buf):
                want = HEADER_SIZE if frame > _BIG else _CHUNK
                buf, base, at = os.pread(fd, want, pos), pos, 0
            if len(buf) - at < HEADER_SIZE:
                raise _broken(file, "a truncated length header", len(offsets), pos)
            length, length_crc = HEADER.unpack_from(buf, at)
            if crcs.get(length) != length_crc:
                if masked_crc(buf[at : at + 8]) != length_crc:  # listed up to the next header
                    after = _next_header(fd, pos + 1, size)
                    offsets.append(pos)
                    sizes.append(after - pos)
                    pos, buf, frame = after, b"", 0
                    continue
                crcs[length] = length_crc
            frame = length + _FRAME
            if pos + frame > size:
                raise _broken(file, f"a record of {length} bytes cut short", len(offsets), pos)
            offsets.append(pos)
            sizes.append(frame)
            pos += frame
    return np.frombuffer(offsets, np.int64).copy(), np.frombuffer(sizes, np.int64).copy()


def _next_header(fd: int, start: int, size: int) -> int:
    """The offset of the first plausible record header at or after ``start`` (a length
    below 16 MB whose CRC matches, and whose record fits in the file), else ``size``."""
    pos = start
    while pos < size:
        buf = os.pread(fd, _CHUNK + HEADER_SIZE, pos)
        last = len(buf) - HEADER_SIZE
        k = 0
        while k <= last:
            found = buf.find(b"\x00" * 5, k + 3, last + 8)  # a length's 5 high bytes
            if found < 0:
                break
            candidate = found - 3
            length, length_crc = HEADER.unpack_from(buf, candidate)
            fits = pos + candidate + length + _FRAME <= size
            if fits and masked_crc(buf[candidate : candidate + 8]) == length_crc:
                return pos + candidate
            k = candidate + 1
        if last < 0:
            break
        pos += last + 1
    return size


def _broken(file: str, what: str, index: int, offset: int) -> RecordError:
    return RecordError(
        f"Expected a valid TFRecord file to index. Received: {what} in record {index} at "
        f"byte offset {offset} of {file!r}. The file is truncated or corrupt: random access "
        "needs every record's length.",
        fix=Fix(
            "Write the file again; records.read_records(file, on_error='skip') reads the "
            "records that are still good.",
            "Write the file again; hublayer records inspect --on-error skip reads past bad "
            "records.",
        ),
        file=file,
        index=index,
        offset=offset,
    )


def _text(offsets: np.ndarray, sizes: np.ndarray) -> bytes:
    pairs = zip(offsets.tolist(), sizes.tolist(), strict=True)
    return "".join(f"{o} {s}\n" for o, s in pairs).encode()


def _parse(data: bytes, path: Path, file_size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The offsets and sizes an index file holds, if it describes a file of
    ``file_size`` bytes frame by frame; None for anything else."""
    try:
        numbers = np.array(data.split(), dtype=np.int64)
    except (ValueError, OverflowError):
        return None
    if numbers.size % 2 or (not data.endswith(b"\n") and numbers.size):
        return None
    offsets, sizes = numbers[0::2].copy(), numbers[1::2].copy()
    if not offsets.size:
        return (offsets, sizes) if file_size == 0 else None
    ends = offsets + sizes
    if offsets[0] != 0 or ends[-1] != file_size or (sizes <= 0).any():
        return None
    if not np.array_equal(offsets[1:], ends[:-1]):
        return None
    return offsets, sizes


def _identity(path: Path | str) -> list[int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _root() -> Path:
    return config.cache_dir() / "records-index"


def _cached_path(file: str) -> Path:
    absolute = os.path.abspath(file)
    return _root() / "files" / _digest(absolute, 16) / (os.path.basename(file) + SUFFIX)


def _stamp_path(index_path: Path) -> Path:
    return _root() / "stamps" / f"{_digest(str(index_path.absolute()), 32)}.json"


def _read_stamp(index_path: Path) -> dict[str, Any] | None:
    try:
        stamp = json.loads(_stamp_path(index_path).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _stamp(index_path: Path, file: str, file_id: list[int]) -> None:
    """Record that ``index_path`` matches ``file`` as it is now (best effort: a cache
    that cannot be written costs a scan next time, nothing else)."""
    index_id = _identity(index_path)
    if index_id is None:
        return
    stamp = {
        "version": _STAMP_VERSION,
        "file": os.path.abspath(file),
        "file_identity": file_id,
        "index": str(index_path.absolute()),
        "index_identity": index_id,
    }
    with contextlib.suppress(OSError):
        _write_atomic(_stamp_path(index_path), json.dumps(stamp).encode())


def _fresh(index_path: Path, file: str, file_id: list[int]) -> bool:
    stamp = _read_stamp(index_path)
    return (
        stamp is not None
        and stamp.get("version") == _STAMP_VERSION
        and stamp.get("file") == os.path.abspath(file)
        and stamp.get("file_identity") == file_id
        and stamp.get("index_identity") == _identity(index_path)
    )


def _writable(folder: str) -> bool:
    return os.access(folder or ".", os.W_OK | os.X_OK)


def _build(file: str, overwrite: bool) -> FileIndex:
    """The current index of one file: reused, verified, or written."""
    _check_local(file)
    file_id = _identity(file)
    if file_id is None:
        raise RecordError(f"Expected a TFRecord file at {file!r}. Received: no such file.")
    beside = Path(file + SUFFIX)
    candidates = [p for p in (beside, _cached_path(file)) if p.is_file()]
    for path in candidates:
        if _fresh(path, file, file_id):
            parsed = _parse(path.read_bytes(), path, file_id[0])
            if parsed is not None:
                return FileIndex(file, path, *parsed, *file_id)
    offsets, sizes = _scan(file, file_id[0])
    if _identity(file) != file_id:
        raise RecordError(
            f"Expected {file!r} to stay the same while it is indexed. Received: it changed. "
            "Index it once it is complete.",
            file=file,
        )
    text = _text(offsets, sizes)
    for path in candidates:
        if path.read_bytes() == text:  # verified: another tool's, or stamped elsewhere
            _stamp(path, file, file_id)
            return FileIndex(file, path, offsets, sizes, *file_id)
    target = beside if _writable(os.path.dirname(file)) else _cached_path(file)
    if target.exists() and not overwrite and _read_stamp(target) is None:
        raise RecordError(
            f"Expected the index {str(target)!r} to match {file!r}. Received: an index "
            "that hublayer did not write, which lists other records than the file has "
            "(stale, or for another file).",
            fix=_fix_overwrite(),
            file=file,
        )
    _write_atomic(target, text)
    _stamp(target, file, file_id)
    return FileIndex(file, target, offsets, sizes, *file_id)


def load_indexes(files: Files, *, overwrite: bool = False) -> list[FileIndex]:
    """:func:`index`, returning what each index holds (for readers)."""
    return [_build(file, overwrite) for file in expand_files(files)]


def index(files: Files, *, overwrite: bool = False) -> list[Path]:
    """Write (or reuse) one index per TFRecord file, for random access to its records.

    The index is DALI's and the ``tfrecord`` package's format (see the module's
    docstring): ``<file>.idx`` beside the file, or in the cache when that folder is
    read-only. An index is reused only while the file's size and modification time
    are those it was made for; otherwise it is checked against the file and rebuilt.

    Args:
        files: TFRecord files: paths, globs, folders or a list (``expand_files``).
            Only local, uncompressed files can be indexed.
        overwrite: replace an index that hublayer did not write and that does not
            match its file (by default that is an error; hublayer's own stale indexes
            are always rebuilt).

    Returns:
        The index paths, one per file, in the files' order.

    Raises:
        RecordError: a missing, remote or compressed file; a record cut short at the
            end of the file (naming file, record and offset); a foreign index that does
            not match its file, without ``overwrite``. A record whose length is corrupt
            is indexed up to the next valid header: reading it raises, not indexing.

    Example:
        >>> from hublayer import records
        >>> records.index(["data/a.tfrecord"])  # doctest: +SKIP
        [PosixPath('data/a.tfrecord.idx')]
    """
    return [entry.path for entry in load_indexes(files, overwrite=overwrite)]
