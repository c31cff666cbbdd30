"""The content digest of a model: one sha256 over a canonical listing of its files.

Defined once, here (docs/API.md, "Pinning", spells it out for other tools). For a folder:

1. Take every regular file under it, at any depth. Symbolic links are followed: a link
   counts as the bytes it points to, under the link's own path. Folders themselves,
   empty ones included, and links that point nowhere do not count.
2. For each file, one line of bytes::

       <relative POSIX path, UTF-8> NUL <size in bytes, decimal> NUL <sha256, 64 lowercase hex> LF

3. Sort the lines by path (byte order of the UTF-8 path) and join them.
4. The digest is ``"sha256:"`` followed by the sha256 (lowercase hex) of the result.

A single file (a ``.keras``) is digested as a folder holding only that file, under its
own name. The listing does not depend on how the files arrived (a folder, a ``.tar.gz``,
a ``.zip``, any handle scheme), on timestamps, permissions or archive member order. A
path cannot hold NUL, and the size and hash have fixed forms, so two different listings
never give the same bytes.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "a.txt").write_bytes(b"hi")
    >>> content_digest(root) == digest_records([("a.txt", 2, hashlib.sha256(b"hi").hexdigest())])
    True
    >>> content_digest(root)[:15]
    'sha256:5ae65e86'
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["DIGEST_PREFIX", "HASH_CHUNK", "content_digest", "digest_records", "sha256_file"]

#: Every digest starts with it; the rest is 64 lowercase hex digits.
DIGEST_PREFIX = "sha256:"
#: Read and write size for hashing and copying (large, for throughput).
HASH_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file, read in large chunks."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buffer = bytearray(HASH_CHUNK)
        view = memoryview(buffer)
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def digest_records(records: Iterable[tuple[str, int, str]]) -> str:
    """The content digest of files given as ``(relative POSIX path, size, sha256 hex)``.

    What a cache manifest already lists, so a cached entry's digest costs no re-read.
    """
    lines = sorted(
        (path.encode("utf-8", "surrogateescape"), size, sha.lower()) for path, size, sha in records
    )
    digest = hashlib.sha256()
    for path, size, sha in lines:
        digest.update(b"%s\0%d\0%s\n" % (path, size, sha.encode("ascii")))
    return DIGEST_PREFIX + digest.hexdigest()


def _records(root: Path) -> list[tuple[str, int, str]]:
    """``(path, size, sha256)`` of every regular file under ``root``, links followed."""
    records: list[tuple[str, int, str]] = []
    seen: set[tuple[int, int]] = set()  # folders walked (a link cycle is walked once)
    for folder, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:
            dirnames.clear()
            continue
        seen.add((st.st_dev, st.st_ino))
        base = Path(folder)
        for name in filenames:
            path = base / name
            if not path.is_file():  # a dangling link, a FIFO...: no content
                continue
            rel = path.relative_to(root).as_posix()
            records.append((rel, path.stat().st_size, sha256_file(path)))
    return records


def content_digest(path: str | os.PathLike[str]) -> str:
    """The content digest (``"sha256:<64 hex>"``) of a model folder or a single file.

    Reads every byte; see this module's docstring for the exact definition.

    Args:
        path: a folder, or one file (digested as a folder holding only it).

    Returns:
        The digest string, as a pin writes it after ``@``.

    Raises:
        FileNotFoundError: nothing at ``path``.

    Example:
        >>> import tempfile
        >>> content_digest(tempfile.mkdtemp())  # an empty folder
        'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    root = Path(path)
    if root.is_dir():
        return digest_records(_records(root))
    st = root.stat()  # FileNotFoundError when nothing is there
    return digest_records([(root.name, st.st_size, sha256_file(root))])
