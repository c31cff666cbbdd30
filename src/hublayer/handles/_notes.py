"""Notes on a cache entry: results computed once per entry, kept in its manifest.

A layer above ``handles`` (the model scan) stores what it computed from an entry's files
under a name in the manifest's ``notes``. A note is bound to the sha256 of the files it
names: it is returned only while the manifest still records those hashes (a new commit
of the entry writes a new manifest, without the note). A path outside the cache has no
notes, and writing one there does nothing.

Example:
    >>> import tempfile, pathlib
    >>> read_entry_note(tempfile.mkdtemp(), "scan") is None  # not a cache entry
    True
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from hublayer.errors import CacheLockError
from hublayer.handles._cache import Cache

__all__ = ["read_entry_note", "write_entry_note"]

_LOCK_TIMEOUT = 5.0
#: path -> (cache, key, entry) of paths found inside an entry (a cache's layout is fixed).
_ENTRIES: dict[str, tuple[Cache, str, Path]] = {}
#: (cache root, key, name) -> (the manifest object it was checked against, the value).
_CHECKED: dict[tuple[str, str, str], tuple[Any, Any]] = {}
_MEMO_MAX = 256


def _entry(path: str | os.PathLike[str]) -> tuple[Cache, str, Path] | None:
    """``(cache, key, entry folder)`` when ``path`` lies inside a cache entry."""
    text = os.fspath(path)
    if (known := _ENTRIES.get(text)) is not None:
        return known
    found = _find_entry(text)
    if found is not None:
        if len(_ENTRIES) >= _MEMO_MAX:
            _ENTRIES.clear()
        _ENTRIES[text] = found
    return found


def _find_entry(path: str) -> tuple[Cache, str, Path] | None:
    target = Path(path).absolute()
    for models in target.parents:
        if models.name != "models" or not (models.parent / "manifests").is_dir():
            continue
        parts = target.relative_to(models).parts
        for i in range(len(parts), 0, -1):
            key = "/".join(parts[:i])
            if (models.parent / "manifests" / f"{key}.json").is_file():
                return Cache(models.parent), key, models / key
        return None
    return None


def _hashes(manifest: Any) -> dict[str, str]:
    return {rel: digest for rel, _size, digest in manifest.files}


def read_entry_note(path: str | os.PathLike[str], name: str) -> Any:
    """The note ``name`` of the entry holding ``path``, or ``None``.

    ``None`` too when the entry's files no longer match its manifest, or the files the
    note was computed from changed.
    """
    found = _entry(path)
    if found is None:
        return None
    cache, key, _ = found
    hit = cache.lookup(key)  # the fast path: memoized manifest, one stat per file
    if hit.path is None or hit.manifest is None:
        return None
    memo = (str(cache.root), key, name)
    checked = _CHECKED.get(memo)
    if checked is not None and checked[0] is hit.manifest:  # the same parse: same answer
        return checked[1]
    note = hit.manifest.notes.get(name)
    value = None
    if isinstance(note, dict):
        hashes = _hashes(hit.manifest)
        files = note.get("files")
        if isinstance(files, dict) and all(hashes.get(f) == h for f, h in files.items()):
            value = note.get("value")
    if len(_CHECKED) >= _MEMO_MAX:
        _CHECKED.clear()
    _CHECKED[memo] = (hit.manifest, value)
    return value


def write_entry_note(
    path: str | os.PathLike[str], name: str, value: Any, *, files: list[str] | None = None
) -> bool:
    """Store ``value`` as note ``name`` of the entry holding ``path``.

    Args:
        path: a path inside a cache entry (else nothing is written).
        name: the note's name.
        value: JSON-ready data.
        files: the entry's files (relative paths) the value was computed from; the note
            is bound to their hashes. ``None`` binds it to every file.

    Returns:
        Whether the note was written (not when ``path`` is outside the cache, the entry
        changed, or another process held its lock for seconds).
    """
    found = _entry(path)
    if found is None:
        return False
    cache, key, _ = found
    try:
        from hublayer.handles._lock import EntryLock  # filelock, only when writing

        with EntryLock(cache.root / "locks" / f"{key}.lock", timeout=_LOCK_TIMEOUT):
            hit = cache.lookup(key)
            if hit.path is None or hit.manifest is None:
                return False
            hashes = _hashes(hit.manifest)
            chosen = hashes if files is None else {f: hashes.get(f, "") for f in files}
            notes = {**hit.manifest.notes, name: {"files": chosen, "value": value}}
            dataclasses.replace(hit.manifest, notes=notes).write(cache.manifest_path(key))
            return True
    except (CacheLockError, OSError):
        return False
