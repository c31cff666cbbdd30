"""The lock file: the content digest each handle of a project must have.

``hublayer lock HANDLE...`` writes it; ``resolve`` reads it. Where it is: the
``lockfile`` argument, else ``$HUBLAYER_LOCKFILE``, else ``./hublayer.lock`` when that file
exists (see :func:`hublayer.config.lockfile`). TOML, or JSON with the same fields::

    # hublayer lock file: each handle, and the content digest its model must have.
    version = 1

    [models]
    "kaggle://google/bert/tensorFlow2/en-uncased/3" = "sha256:4c1f…(64 hex)"
    "https://example.com/models/encoder.tar.gz" = "sha256:9e0a…"

    {"version": 1, "models": {"kaggle://google/bert/tensorFlow2/en-uncased/3": "sha256:4c1f…"}}

An unpinned handle the file lists is checked against its digest, as if it were written
``HANDLE@sha256:…``; spellings of one handle (a kaggle.com URL and ``kaggle://``) are one
entry. A handle with its own pin follows its pin. A handle the file lacks is allowed,
unless strict mode (``$HUBLAYER_LOCKED=1``) refuses it.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "hublayer.lock"
    >>> write_lock_text(path, {"kaggle://o/m/tf2/v/1": "sha256:" + "0" * 64})
    >>> read_lock_file(path)
    {'kaggle://o/m/tf2/v/1': 'sha256:0000000000000000000000000000000000000000000000000000000000000000'}
"""  # noqa: E501

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hublayer import config
from hublayer.errors import HandleError, LockFileError
from hublayer.handles._handles import Handle
from hublayer.handles._parse import parse_handle
from hublayer.handles._parse_pin import check_digest, split_pin

__all__ = ["LOCK_VERSION", "LockFile", "active_lock", "read_lock_file", "write_lock_text"]

#: The only ``version`` this hublayer reads and writes.
LOCK_VERSION = 1
_HEADER = (
    "# hublayer lock file: each handle, and the content digest its model must have.\n"
    "# Written by `hublayer lock`; `hublayer lock --update HANDLE` pins a handle again.\n"
)


def identity(handle: str) -> Handle | str:
    """What makes two spellings one entry: the parsed handle (a cache key as itself)."""
    text = handle.strip()
    if text.startswith("built:"):
        return text
    return parse_handle(text)


def _error(path: Path, received: str, fix: str, handle: str | None = None) -> LockFileError:
    return LockFileError(
        f"Expected a hublayer lock file at {path}: version = {LOCK_VERSION} and a [models] "
        f'table of "HANDLE" = "sha256:<64 hex>". Received: {received}. {fix}',
        path=str(path),
        handle=handle,
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"the key {twice[0]!r} appears twice")
    return dict(pairs)


def _parse(path: Path, text: str) -> dict[str, Any]:
    try:
        if text.lstrip().startswith("{"):
            data = json.loads(text, object_pairs_hook=_no_duplicates)
        else:
            data = tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:  # JSONDecodeError is a ValueError
        raise _error(
            path, f"a file that is not valid TOML or JSON ({error})", "Fix or rewrite it."
        ) from None
    if not isinstance(data, dict):
        raise _error(path, f"a {type(data).__name__}", "Write a table (TOML) or object (JSON).")
    return data


@dataclass(frozen=True)
class LockFile:
    """A parsed lock file: ``entries`` maps each handle as written to its digest."""

    path: Path
    entries: dict[str, str]
    #: identity of each handle (see :func:`identity`) -> (the handle as written, digest)
    by_identity: dict[Handle | str, tuple[str, str]]

    @classmethod
    def parse(cls, path: Path, text: str) -> LockFile:
        """Parse and check lock file ``text`` read from ``path``.

        Raises:
            LockFileError: not TOML/JSON, another ``version``, unknown fields, a value
                that is no sha256 digest, a pinned or malformed handle, or two entries
                (two spellings included) for one handle.
        """
        data = _parse(path, text)
        version = data.get("version")
        if version != LOCK_VERSION or isinstance(version, bool):
            raise _error(
                path,
                f"version={version!r}",
                f"This hublayer reads version {LOCK_VERSION}; write the file again with "
                "`hublayer lock --update`.",
            )
        unknown = sorted(set(data) - {"version", "models"})
        if unknown:
            raise _error(path, f"unknown fields {unknown}", "Remove them.")
        models = data.get("models", {})
        if not isinstance(models, dict):
            raise _error(path, f"models={models!r}", "Make models a table of handle = digest.")
        entries: dict[str, str] = {}
        by_identity: dict[Handle | str, tuple[str, str]] = {}
        for handle, value in models.items():
            try:
                bare, pin = split_pin(handle)
                if pin is not None:
                    reason = "a handle with its own pin"
                elif not isinstance(value, str):
                    reason = "a digest that is not a string"
                else:
                    reason = ""
                    digest = check_digest(value, handle=handle, where="its digest")
                    key = identity(bare)
            except HandleError as error:
                reason = error.message.split("\n")[0]
            if reason:
                raise _error(
                    path,
                    f"the entry {handle!r} = {value!r}: {reason}",
                    "Write each entry as an unpinned handle and its sha256 digest.",
                    handle,
                )
            if key in by_identity:
                other = by_identity[key][0]
                raise _error(
                    path,
                    f"two entries for one handle: {other!r} and {handle!r}",
                    "Keep one of them.",
                    handle,
                )
            entries[handle] = digest
            by_identity[key] = (handle, digest)
        return cls(path, entries, by_identity)

    def digest_for(self, handle: Handle | str) -> tuple[str, str] | None:
        """``(the handle as written, its digest)`` when the file lists ``handle``."""
        return self.by_identity.get(handle)


#: path -> (file signature, parsed lock file): read again only when the file changed.
_READ: dict[str, tuple[tuple[int, ...], LockFile]] = {}


def load_lock(path: Path) -> LockFile:
    """The lock file at ``path``, parsed once per version of the file.

    Raises:
        LockFileError: the file is missing, unreadable or invalid.
    """
    try:
        st = os.stat(path)
        key = str(path.absolute())
        known = _READ.get(key)
        signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if known is not None and known[0] == signature:
            return known[1]
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise _error(
            path,
            f"{type(error).__name__}: {error}",
            "Check HUBLAYER_LOCKFILE, or write one with `hublayer lock HANDLE...`.",
        ) from None
    lock = LockFile.parse(path, text)
    if len(_READ) >= 64:
        _READ.clear()
    _READ[key] = (signature, lock)
    return lock


def active_lock(lockfile: str | os.PathLike[str] | None = None) -> LockFile | None:
    """The lock file in force (``lockfile``, ``$HUBLAYER_LOCKFILE`` or ``./hublayer.lock``)."""
    path = config.lockfile(lockfile)
    return None if path is None else load_lock(path)


def read_lock_file(path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """The entries of a lock file: each handle as written, and its digest.

    Args:
        path: the lock file; defaults to ``$HUBLAYER_LOCKFILE``, else ``./hublayer.lock``.

    Returns:
        ``{handle: "sha256:<hex>"}``, empty when no lock file is in force.

    Raises:
        LockFileError: the file is missing (when named), not TOML/JSON, of another
            ``version``, or lists one handle twice.
    """
    lock = active_lock(path)
    return {} if lock is None else dict(lock.entries)


def write_lock_text(path: Path, entries: dict[str, str]) -> None:
    """Write ``entries`` atomically: JSON when ``path`` ends in ``.json`` or already holds
    JSON, else TOML; sorted by handle."""
    ordered = dict(sorted(entries.items()))
    as_json = path.suffix.lower() == ".json"
    if not as_json and path.is_file():
        try:
            as_json = path.read_text(encoding="utf-8").lstrip().startswith("{")
        except (OSError, UnicodeDecodeError):
            as_json = False
    if as_json:
        text = json.dumps({"version": LOCK_VERSION, "models": ordered}, indent=2) + "\n"
    else:
        # TOML basic strings take JSON's escapes (ensure_ascii=False: no surrogate pairs).
        rows = "".join(
            f"{json.dumps(h, ensure_ascii=False)} = {json.dumps(d)}\n" for h, d in ordered.items()
        )
        text = f"{_HEADER}version = {LOCK_VERSION}\n\n[models]\n{rows}"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
