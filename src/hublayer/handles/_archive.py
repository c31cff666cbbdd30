"""Safe unpacking of tar (plain, gz, bz2, xz) and zip archives into a fresh folder.

Nothing is ever written outside ``dest``. Members are refused, with
:class:`~hublayer.errors.UnsafeArchiveError`, when they have an absolute path, a ``..``
component, or a path through a symlink; when they are device files, FIFOs or other
special files; when they are symlinks whose target is absolute or resolves outside
``dest``; when they are hard links to anything but a regular file unpacked earlier from
the same archive; and when the archive unpacks to more than ``limit`` bytes (archive
bombs). Files are created with ``O_EXCL | O_NOFOLLOW``, so a duplicate member can never
write through a link.

Tar archives are read as a stream (``r|*``), so a download is unpacked while it arrives.
Zip archives need random access: a stream is spooled to a file first. Every regular file
is hashed as it is written; the result feeds the entry's manifest without a second read.

Example:
    >>> import io, tarfile, tempfile, pathlib
    >>> buf = io.BytesIO()
    >>> with tarfile.open(fileobj=buf, mode="w:gz") as tar:
    ...     info = tarfile.TarInfo("saved_model.pb"); info.size = 3
    ...     tar.addfile(info, io.BytesIO(b"abc"))
    >>> dest = pathlib.Path(tempfile.mkdtemp()) / "entry"
    >>> sorted(unpack(io.BytesIO(buf.getvalue()), dest, limit=1000))
    ['saved_model.pb']
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from hublayer.errors import InsufficientSpaceError, UnsafeArchiveError
from hublayer.handles._manifest import HASH_CHUNK

__all__ = ["ArchiveFormatError", "Readable", "unpack"]

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
#: Members at least this big get a free-space check before they are written.
_SPACE_CHECK_BYTES = 1 << 20


class ArchiveFormatError(ValueError):
    """Private: the bytes are not a readable archive. Callers turn it into a public error."""


class Readable(Protocol):
    """Anything with ``read(n)``."""

    def read(self, n: int = -1, /) -> bytes: ...


class _Prefixed:
    """A reader that first returns ``prefix``, then the rest of ``source``."""

    def __init__(self, prefix: bytes, source: Readable) -> None:
        self._prefix = prefix
        self._source = source

    def read(self, n: int = -1, /) -> bytes:
        if not self._prefix:
            return self._source.read(n)
        head, self._prefix = (self._prefix, b"") if n < 0 else (self._prefix[:n], self._prefix[n:])
        if n < 0:
            return head + self._source.read()
        return head + self._source.read(n - len(head)) if len(head) < n else head


class _Writer:
    """Creates the members of one archive under ``dest``, enforcing every safety rule."""

    def __init__(self, dest: Path, limit: int, source: str) -> None:
        self.dest = dest
        self.limit = limit
        self.source = source
        self.total = 0
        self.files: dict[str, tuple[int, str]] = {}
        self.links: list[str] = []
        self._link_set: set[str] = set()

    def refuse(self, member: str, why: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(
            f"Expected archive members to stay inside their entry. Received: member "
            f"{member!r} in {self.source}, which {why}. Nothing was written outside the "
            "cache; the archive was refused. Re-create it with relative paths and no links "
            "that leave it, or get it from a source you trust.",
            path=self.source,
            member=member,
        )

    def path(self, name: str) -> str | None:
        """The validated relative path of member ``name``; None for the archive root."""
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            raise self.refuse(name, "has an absolute path")
        if ".." in parts:
            raise self.refuse(name, "has a '..' component")
        if not parts:
            return None
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in self._link_set:
                raise self.refuse(name, "lies inside a symlink")
        return "/".join(parts)

    def _grow(self, member: str, size: int) -> None:
        self.total += size
        if self.total > self.limit:
            raise UnsafeArchiveError(
                f"Expected the archive to unpack to at most {self.limit} bytes. Received: "
                f"{self.source} goes over it at member {member!r}. If the model really is "
                "this big, raise HUBLAYER_MAX_UNPACK_BYTES.",
                path=self.source,
                member=member,
            )
        if size >= _SPACE_CHECK_BYTES:
            free = shutil.disk_usage(self.dest).free
            if free < size:
                raise InsufficientSpaceError(
                    f"Expected {size} free bytes to unpack {member!r} from {self.source}. "
                    f"Received: {free} bytes free under {self.dest}. Free some space, "
                    "run `hublayer cache prune`, or point HUBLAYER_CACHE_DIR elsewhere.",
                    path=str(self.dest),
                    needed=size,
                    free=free,
                )

    def directory(self, rel: str) -> None:
        try:
            os.makedirs(self.dest / rel, exist_ok=True)
        except FileExistsError:
            raise self.refuse(rel, "is a folder and also a file") from None

    def file(self, rel: str, data: Readable, size: int, mode: int) -> None:
        self._grow(rel, size)
        parent = posixpath.dirname(rel)
        if parent:
            self.directory(parent)
        try:
            fd = os.open(self.dest / rel, _OPEN_FLAGS, 0o755 if mode & 0o111 else 0o644)
        except (FileExistsError, IsADirectoryError):
            raise self.refuse(rel, "appears twice") from None
        digest = hashlib.sha256()
        written = 0
        with open(fd, "wb", buffering=0) as out:
            while chunk := data.read(HASH_CHUNK):
                written += len(chunk)
                if written > size:
                    raise self.refuse(rel, "holds more bytes than its header says")
                out.write(chunk)
                digest.update(chunk)
        if written != size:
            raise ArchiveFormatError(f"{rel}: {written} of {size} bytes (archive cut short)")
        self.files[rel] = (size, digest.hexdigest())

    def symlink(self, rel: str, target: str) -> None:
        if not target or target.startswith("/") or os.path.isabs(target):
            raise self.refuse(rel, f"is a symlink to the absolute path {target!r}")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
        if resolved == ".." or resolved.startswith("../"):
            raise self.refuse(rel, f"is a symlink that points outside ({target!r})")
        parent = posixpath.dirname(rel)
        if parent:
            self.directory(parent)
        try:
            os.symlink(target, self.dest / rel)
        except FileExistsError:
            raise self.refuse(rel, "appears twice") from None
        self.links.append(rel)
        self._link_set.add(rel)

    def hardlink(self, rel: str, target_name: str) -> None:
        try:
            target = self.path(target_name)
        except UnsafeArchiveError:
            raise self.refuse(rel, f"is a hard link to {target_name!r} outside") from None
        if target is None or target not in self.files or target in self._link_set:
            raise self.refuse(rel, f"is a hard link to {target_name!r}, not to a file before it")
        size, digest = self.files[target]
        self._grow(rel, size)
        parent = posixpath.dirname(rel)
        if parent:
            self.directory(parent)
        if (self.dest / rel).exists() or (self.dest / rel).is_symlink():
            raise self.refuse(rel, "appears twice")
        # A copy, not a link: the model scan refuses a file with two names (a hard link
        # is how an asset becomes someone's secret file), and a cache entry holds none.
        shutil.copyfile(self.dest / target, self.dest / rel, follow_symlinks=False)
        self.files[rel] = (size, digest)

    def check_links(self) -> None:
        """After unpacking: every symlink, chains included, must resolve inside ``dest``."""
        root = os.path.realpath(self.dest)
        for rel in self.links:
            real = os.path.realpath(self.dest / rel)
            if real != root and not real.startswith(root + os.sep):
                raise self.refuse(rel, "is a symlink that resolves outside through other links")
        # A link to a file becomes a copy of it, for the same reason as hard links; a link
        # to a folder stays (copying could recurse), and the model scan refuses it.
        for rel in self.links:
            path = self.dest / rel
            if path.is_file():
                real = os.path.realpath(path)
                path.unlink()
                shutil.copyfile(real, path)


def _open_tar(reader: Readable) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=reader, mode="r|*", bufsize=HASH_CHUNK)  # type: ignore[call-overload, no-any-return]
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise ArchiveFormatError(f"not a tar or zip archive ({error})") from None


def _unpack_tar(reader: Readable, writer: _Writer) -> None:
    with _open_tar(reader) as tar:
        members: Iterator[tarfile.TarInfo] = iter(tar)
        while True:
            try:
                member = next(members)
            except StopIteration:
                break
            except (tarfile.TarError, EOFError, zlib.error) as error:
                raise ArchiveFormatError(f"damaged tar archive ({error})") from None
            rel = writer.path(member.name)
            if rel is None:
                if not member.isdir():
                    raise writer.refuse(member.name, "names the archive root but is not a folder")
                continue
            if member.isdir():
                writer.directory(rel)
            elif member.isreg():
                data = tar.extractfile(member)
                if data is None:  # pragma: no cover - regular members always have data
                    raise ArchiveFormatError(f"{rel}: no data")
                try:
                    writer.file(rel, data, member.size, member.mode)
                except (tarfile.TarError, EOFError, zlib.error) as error:
                    raise ArchiveFormatError(f"damaged tar archive at {rel} ({error})") from None
            elif member.issym():
                writer.symlink(rel, member.linkname)
            elif member.islnk():
                writer.hardlink(rel, member.linkname)
            else:
                kind = "a device file" if member.ischr() or member.isblk() else "a special file"
                raise writer.refuse(member.name, f"is {kind}")


def _unpack_zip(path: Path, writer: _Writer) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ArchiveFormatError(f"damaged zip archive ({error})") from None
    with archive:
        infos = archive.infolist()
        declared = sum(info.file_size for info in infos)
        if declared > writer.limit:
            writer._grow(infos[-1].filename if infos else "", declared)
        for info in infos:
            rel = writer.path(info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if rel is None:
                continue
            if info.is_dir():
                writer.directory(rel)
            elif kind == stat.S_IFLNK:
                if info.file_size > 4096:
                    raise writer.refuse(info.filename, "is a symlink with a huge target")
                writer.symlink(rel, archive.read(info).decode("utf-8", "replace"))
            elif kind in (0, stat.S_IFREG):
                try:
                    with archive.open(info) as data:
                        writer.file(rel, data, info.file_size, info.external_attr >> 16)
                except (zipfile.BadZipFile, EOFError, zlib.error) as error:
                    raise ArchiveFormatError(f"damaged zip archive at {rel} ({error})") from None
            else:
                raise writer.refuse(info.filename, "is a device file or other special file")


def unpack(
    source: Readable | BinaryIO | Path,
    dest: Path,
    *,
    limit: int,
    name: str | None = None,
) -> dict[str, tuple[int, str]]:
    """Unpack a tar or zip archive into the new folder ``dest``, safely.

    Args:
        source: an archive file, or a stream of one (read once, front to back).
        dest: the folder to create and fill; it must not exist yet.
        limit: the most bytes the archive may unpack to.
        name: how to name the archive in messages (defaults to the path or ``<stream>``).

    Returns:
        ``{relative path: (size, sha256)}`` for every regular file written.

    Raises:
        UnsafeArchiveError: a member would escape ``dest``, is a special file, or the
            archive is bigger than ``limit``. ``dest`` is left for the caller to delete.
        InsufficientSpaceError: the disk is too full for a member.
        ArchiveFormatError: the bytes are not a readable tar or zip archive (private;
            callers raise a public error that fits the source).
    """
    label = name or (str(source) if isinstance(source, Path) else "<stream>")
    dest.mkdir(parents=True)
    writer = _Writer(dest, limit, label)
    spool: Path | None = None
    try:
        if isinstance(source, Path):
            with open(source, "rb") as f:
                head = f.read(4)
            if head.startswith(_ZIP_MAGIC):
                _unpack_zip(source, writer)
            else:
                with open(source, "rb") as f:
                    _unpack_tar(f, writer)
        else:
            head = source.read(4)
            if head.startswith(_ZIP_MAGIC):
                spool = dest.with_name(dest.name + ".zip-spool")
                with open(spool, "wb") as out:
                    out.write(head)
                    while chunk := source.read(HASH_CHUNK):
                        out.write(chunk)
                _unpack_zip(spool, writer)
            else:
                _unpack_tar(_Prefixed(head, source), writer)
    finally:
        if spool is not None:
            spool.unlink(missing_ok=True)
    writer.check_links()
    return writer.files
