"""``pin`` and ``write_lock_file``: from a handle to the exact content it names now.

Both resolve first (downloading into the cache when needed), then read the content
digest the entry's manifest records. Neither follows the lock file in force: they say
what a handle names now, which is how a lock file gets written or updated.

Example:
    >>> import hublayer, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "saved_model.pb").write_bytes(b"pb")
    >>> hublayer.pin(str(folder)).rsplit("@", 1)[1][:7]
    'sha256:'
"""

from __future__ import annotations

import os
from pathlib import Path

from hublayer import config
from hublayer.handles._handles import KaggleHandle, LocalHandle
from hublayer.handles._lockfile import LockFile, identity, load_lock, write_lock_text
from hublayer.handles._parse_pin import pinned, split_pin
from hublayer.handles._resolve import Resolved, resolve_pinned

__all__ = ["pin", "write_lock_file"]

PathLike = str | os.PathLike[str]


def _spelling(text: str, resolved: Resolved, *, versioned: bool) -> str:
    """The handle to write before a pin: as given, but a local path made absolute and,
    when ``versioned``, a Kaggle handle given without a version with the one it got."""
    handle = resolved.handle
    if isinstance(handle, LocalHandle):
        return str(handle)
    if versioned and isinstance(handle, KaggleHandle):
        given = identity(text)
        if isinstance(given, KaggleHandle) and given.version is None:
            return str(handle)
    return text


def pin(
    handle: str,
    *,
    cache_dir: PathLike | None = None,
    offline: bool | None = None,
) -> str:
    """The pinned form of ``handle``: ``HANDLE@sha256:<64 hex>``, for the content it names now.

    Resolves first (a download goes into the cache). A Kaggle handle without a version
    gets the version it resolved to, and a relative path becomes absolute. An already
    pinned handle is checked and returned. The lock file is not consulted.

    Args:
        handle: any handle :func:`hublayer.resolve` accepts.
        cache_dir: the cache folder; defaults to ``config.cache_dir()``.
        offline: never use the network; defaults to ``$HUBLAYER_OFFLINE``.

    Returns:
        The pinned handle; pass it wherever a handle is accepted.

    Raises:
        IntegrityError: ``handle`` was pinned, and the content differs.
        HandleError, DownloadError, NotCachedError...: as :func:`hublayer.resolve`.

    Example:
        >>> import tempfile
        >>> pin(tempfile.mkdtemp()).endswith(
        ...     "@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        True
    """
    text, _ = split_pin(handle)
    resolved = resolve_pinned(
        handle,
        cache_dir=cache_dir,
        offline=offline,
        load_format="COMPRESSED",
        use_lock=False,
        want_digest=True,
    )
    return pinned(_spelling(text, resolved, versioned=True), resolved.digest)


def write_lock_file(
    *handles: str,
    path: PathLike | None = None,
    update: bool = False,
    cache_dir: PathLike | None = None,
    offline: bool | None = None,
) -> dict[str, str]:
    """Write (or extend) a lock file: each handle, and the content digest it names now.

    A handle the file already lists keeps its entry and is checked against it (so a
    changed model raises), unless ``update`` pins it again. A pinned handle is checked
    against its own pin and recorded with it. With no handle, every listed one is
    checked (or, with ``update``, pinned again). Nothing is written unless every handle
    succeeds.

    Args:
        *handles: handles to add, check or update.
        path: the lock file; defaults to ``$HUBLAYER_LOCKFILE``, else ``./hublayer.lock``.
        update: pin listed handles again to their current content.
        cache_dir: the cache folder; defaults to ``config.cache_dir()``.
        offline: never use the network; defaults to ``$HUBLAYER_OFFLINE``.

    Returns:
        The file's entries after writing: ``{handle: "sha256:<hex>"}``.

    Raises:
        IntegrityError: a listed (or pinned) handle's content changed and ``update`` is
            off; the file is left as it was.
        LockFileError: the existing file cannot be read.

    Example:
        >>> import tempfile, pathlib
        >>> folder = tempfile.mkdtemp()
        >>> lock = pathlib.Path(tempfile.mkdtemp()) / "hublayer.lock"
        >>> list(write_lock_file(folder, path=lock).values())[0][:7]
        'sha256:'
    """
    target = config.lockfile(path) or Path(config.LOCKFILE_NAME)
    current = load_lock(target) if target.is_file() else LockFile(target, {}, {})
    entries = dict(current.entries)
    for handle in handles or tuple(current.entries):
        text, own_pin = split_pin(handle)
        listed = current.digest_for(identity(text))
        if own_pin is None and listed is not None and not update:
            checked = f"{listed[0]}@{listed[1]}"  # must still name the recorded content
        else:
            checked = handle
        resolved = resolve_pinned(
            checked,
            cache_dir=cache_dir,
            offline=offline,
            load_format="COMPRESSED",
            use_lock=False,
            want_digest=True,
        )
        if listed is not None:
            entries.pop(listed[0], None)
        # A lock entry keeps the spelling a program uses: a Kaggle handle without a
        # version stays so, and its next version must be pinned again deliberately.
        spelling = listed[0] if listed is not None else _spelling(text, resolved, versioned=False)
        entries[spelling] = resolved.digest
    write_lock_text(target, entries)
    return dict(sorted(entries.items()))
