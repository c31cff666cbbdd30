"""File sets: what a user passes as ``files``, turned into a list of files to read.

This is the one place that decides what ``files`` means, for every entry point
(``records``, ``train``, ``embed`` and the CLI)::

    "data/train-00000.tfrecord"          one file
    "data/train-*.tfrecord"              a glob pattern (sorted matches)
    "data/train"                         a folder: every visible file directly in it
                                         (a folder or a pattern skips *.json label
                                         maps and schemas, *.idx and *.tfindex record
                                         indexes, *.tmp and hidden files)
    "file:///abs/data/train-*.tfrecord"  a local file URL, read as the local path
    "gs://bucket/train-*.tfrecord"       a remote URL (gs://, s3://, memory://, ...):
                                         listed and read through fsspec
    ["a.tfrecord", "gs://b/c-*"]         a list of any of these

Remote files are listed, sized and opened through fsspec (``gcsfs``/``s3fs`` are the
``hublayer[gcs]``/``hublayer[s3]`` extras), and read by the records reader, so their
CRCs are checked as a local file's are.

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> for name in ("b.tfrecord", "a.tfrecord", "a.label_map.json"):
    ...     _ = open(os.path.join(folder, name), "wb").write(b"")
    >>> [os.path.basename(f) for f in expand_files(folder)]
    ['a.tfrecord', 'b.tfrecord']
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeAlias
from urllib.parse import unquote, urlparse

from hublayer.errors import HublayerError, MissingExtraError, RecordError

__all__ = [
    "Files",
    "expand_files",
    "file_size",
    "fingerprint_files",
    "is_url",
    "local_path",
    "open_file",
]

#: One path, glob pattern, folder or URL, or an iterable of them.
Files: TypeAlias = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]

_GLOB_CHARS = frozenset("*?[")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_EXTRAS = {"gs": "gcs", "gcs": "gcs", "s3": "s3", "s3a": "s3"}
_log = logging.getLogger("hublayer.records")


def is_url(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a local path.

    Example:
        >>> is_url("gs://bucket/a.tfrecord"), is_url("data/a.tfrecord")
        (True, False)
    """
    return bool(_URL.match(os.fspath(path)))


def _hidden_or_temp(name: str) -> bool:
    # *.idx and *.tfindex: record indexes (records.index, DALI, the tfrecord package)
    return name.startswith(".") or name.endswith((".tmp", ".json", ".idx", ".tfindex"))


def _filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path inside it."""
    import fsspec

    scheme = url.split("://", 1)[0].lower()
    try:
        return fsspec.core.url_to_fs(url)  # type: ignore[no-any-return]
    except ImportError as error:
        extra = _EXTRAS.get(scheme)
        install = f'pip install "hublayer[{extra}]"' if extra else "install its fsspec package"
        raise MissingExtraError(
            f"Expected a filesystem for {scheme}:// URLs. Received: {error}. To read "
            f"{url!r}, {install}.",
            extra=extra,
            package=scheme,
        ) from None
    except ValueError as error:
        raise RecordError(
            f"Expected a path, or a URL whose scheme fsspec knows (gs://, s3://, "
            f"file://...). Received: {url!r} ({error}).",
            file=url,
        ) from None


def local_path(text: str) -> str:
    """A ``file://`` URL as a local path; anything else as it is (``~`` expanded).

    Example:
        >>> local_path("file:///data/a%20b.tfrecord")
        '/data/a b.tfrecord'
    """
    if text.lower().startswith("file://"):
        return unquote(urlparse(text).path)
    return os.path.expanduser(text)


def _missing(what: str, text: str, received: str, fix: str) -> RecordError:
    return RecordError(
        f"Expected {what} to match at least one TFRecord file. Received: {text!r}, {received}. "
        f"{fix}",
        file=text,
    )


def _expand_local(text: str, what: str) -> list[str]:
    if _GLOB_CHARS & set(text):
        matches = sorted(
            m
            for m in glob.glob(text)
            if os.path.isfile(m) and not _hidden_or_temp(os.path.basename(m))
        )
        if not matches:
            raise _missing(
                what,
                text,
                "a pattern that matches no file",
                "Check the folder and the pattern (quote it in a shell, so the shell does "
                "not expand it).",
            )
        return matches
    if os.path.isdir(text):
        inside = sorted(
            entry.path
            for entry in os.scandir(text)
            if entry.is_file() and not _hidden_or_temp(entry.name)
        )
        if not inside:
            raise _missing(what, text, "an empty folder", "Pass the files or a pattern instead.")
        return inside
    if os.path.isfile(text):
        return [text]
    raise _missing(
        what,
        text,
        "no such file or folder",
        "Check the path (and the working directory).",
    )


def _expand_remote(url: str, what: str) -> list[str]:
    fs, path = _filesystem(url)
    try:
        if _GLOB_CHARS & set(path):
            found = fs.glob(path, detail=True)
            names = sorted(
                n
                for n, info in found.items()
                if info.get("type") == "file" and not _hidden_or_temp(n.rsplit("/", 1)[-1])
            )
            if not names:
                raise _missing(what, url, "a pattern that matches no file", "Check the pattern.")
            return [fs.unstrip_protocol(n) for n in names]
        if fs.isdir(path):
            entries = fs.ls(path, detail=True)
            names = sorted(
                info["name"]
                for info in entries
                if info.get("type") == "file"
                and not _hidden_or_temp(info["name"].rstrip("/").rsplit("/", 1)[-1])
            )
            if not names:
                raise _missing(what, url, "an empty folder", "Pass the files or a pattern.")
            return [fs.unstrip_protocol(n) for n in names]
        if fs.isfile(path):
            return [url]
    except HublayerError:
        raise
    except Exception as error:  # fsspec backends raise their own (credentials, network)
        raise RecordError(
            f"Expected to list {what} at {url!r}. Received: {type(error).__name__}: "
            f"{error}. Check the URL and your credentials for it.",
            file=url,
        ) from error
    raise _missing(what, url, "no such file or folder", "Check the URL.")


def expand_files(files: Files, *, role: str | None = None) -> list[str]:
    """Expand files, glob patterns, folders and URLs into the list of files to read.

    A folder stands for every visible file directly inside it, and a pattern for every
    file it matches, except ``*.json`` files (schemas and label maps kept next to the
    data), record indexes (``*.idx``, ``*.tfindex``) and temp files; a file named on its
    own is always taken. A ``file://`` URL is
    read as its local path; other URLs (``gs://``, ``s3://``, ``memory://``...) are
    listed through fsspec and come back as URLs.

    Args:
        files: a path, a glob pattern (``"data/train-*.tfrecord"``), a folder, a URL
            (which may hold a pattern), or an iterable of them.
        role: which split these files are (``"train"``, ``"validation"``...), named in
            messages ("Expected the validation files to match ...").

    A file reached more than once (named twice, or named and matched by a pattern or
    folder, in any spelling of its path) is read once, where its first mention puts it,
    and a warning (logger ``hublayer.records``) names it. ``tf.data`` would read it as
    often as it is listed; hublayer does not, on purpose: a pattern that overlaps a
    file named beside it (``["data/*.tfrecord", "data/extra.tfrecord"]``) is nearly
    always a mistake, and reading that file twice would silently change the class
    balance, the epoch and every count and fingerprint taken from the list. To weight
    a file, repeat the dataset or use sample weights.

    Returns:
        The files, each once, in the order given (patterns and folders sorted).

    Raises:
        RecordError: a path that does not exist, a pattern that matches nothing, an
            empty folder, or nothing given at all.
        MissingExtraError: a URL whose filesystem is not installed (``gcsfs``, ``s3fs``).

    Example:
        >>> expand_files("data/train-*.tfrecord")  # doctest: +SKIP
        ['data/train-00000-of-00002.tfrecord', 'data/train-00001-of-00002.tfrecord']
    """
    what = f"the {role} files" if role else "TFRecord files"
    items = [files] if isinstance(files, str | os.PathLike) else list(files)
    found: list[str] = []
    for item in items:
        text = local_path(os.fspath(item))
        found.extend(_expand_remote(text, what) if is_url(text) else _expand_local(text, what))
    if not found:
        raise RecordError(
            f"Expected {what} to name at least one TFRecord file. Received: files=[]. "
            "Pass a path, a glob pattern, a folder or a URL."
        )
    unique: dict[str, str] = {}  # one identity per file -> its first spelling
    for name in found:
        unique.setdefault(name if is_url(name) else os.path.abspath(name), name)
    if len(unique) < len(found):
        _warn_repeated(tuple(found))
    return list(unique.values())


@functools.lru_cache(maxsize=64)
def _warn_repeated(found: tuple[str, ...]) -> None:
    """Say once per file list which files were listed more than once."""
    seen: set[str] = set()
    twice = []
    for name in found:
        key = name if is_url(name) else os.path.abspath(name)
        if key in seen and name not in twice:
            twice.append(name)
        seen.add(key)
    shown = ", ".join(twice[:3]) + (", ..." if len(twice) > 3 else "")
    _log.warning(
        "%d file(s) of the list were named more than once (%s); each is read once "
        "(tf.data would read it each time it is listed). Check for a pattern that "
        "overlaps a file named beside it.",
        len(twice),
        shown,
    )


@contextlib.contextmanager
def _as_os_error() -> Iterator[None]:
    """fsspec backends raise their own errors (botocore's NoCredentialsError...): turn
    them into OSError, which every caller already reports as a RecordError."""
    try:
        yield
    except (OSError, HublayerError):
        raise
    except Exception as error:
        raise OSError(f"{type(error).__name__}: {error}") from error


def open_file(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open a file for reading in binary: a local path, or a URL through fsspec.

    Raises:
        OSError: the file cannot be opened (``FileNotFoundError`` when missing).
        MissingExtraError: a URL whose filesystem is not installed.
    """
    text = local_path(os.fspath(path))
    if not is_url(text):
        return open(text, "rb")
    fs, inside = _filesystem(text)
    with _as_os_error():
        return fs.open(inside, "rb")  # type: ignore[no-any-return]


def file_size(path: str | os.PathLike[str]) -> int:
    """A file's size in bytes: a local path, or a URL through fsspec.

    Raises:
        OSError: the file cannot be reached.
    """
    text = local_path(os.fspath(path))
    if not is_url(text):
        return os.path.getsize(text)
    fs, inside = _filesystem(text)
    with _as_os_error():
        return int(fs.size(inside))


def _identity(path: str) -> list[Any]:
    text = local_path(path)
    if not is_url(text):
        stat = os.stat(text)
        return [os.path.abspath(text), stat.st_size, stat.st_mtime_ns]
    fs, inside = _filesystem(text)
    with _as_os_error():
        info = fs.info(inside)
    changed = next(
        (info[k] for k in ("mtime", "LastModified", "updated", "created") if info.get(k)), None
    )
    return [text, int(info.get("size") or 0), str(changed), str(info.get("ETag", ""))]


def fingerprint_files(files: Iterable[str], **extra: Any) -> str:
    """A sha256 of the files' names, sizes and modification times (for a URL, what its
    filesystem reports: size, time, ETag), and of ``extra``.

    It changes when a file is added, removed, rewritten or touched, so it can key a
    cache of anything computed from the files.

    Example:
        >>> fingerprint_files([], label="label") == fingerprint_files([], label="label")
        True
    """
    rows = [_identity(os.fspath(name)) for name in files]
    payload = json.dumps({"files": rows, **extra}, sort_keys=True, default=repr)
    return hashlib.sha256(payload.encode()).hexdigest()
