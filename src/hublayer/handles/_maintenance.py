"""Cache maintenance: list, verify, remove and prune entries, or build one yourself.

``hublayer.resolve`` fills the cache; this module looks after it (public as
``hublayer.cache`` and from ``hublayer.handles``). Each function takes
``cache_dir``; it defaults to ``config.cache_dir()``.

Layout (``<root>`` is ``config.cache_dir()``: ``$HUBLAYER_CACHE_DIR``, else
``$TFHUB_CACHE_DIR``, else ``~/.cache/hublayer``)::

    <root>/
    ├── models/<key>/                 an entry: the model's own files, nothing else
    │   └── kaggle/google/mobilenet-v2/tensorflow2/100-224-feature-vector/5/
    │       ├── saved_model.pb
    │       └── variables/variables.{index,data-00000-of-00001}
    ├── manifests/<key>.json          completion marker + manifest (path, size, sha256),
    │                                 written last; its mtime is the entry's last use
    ├── aliases/<key>.json            another spelling -> canonical key (tfhub.dev -> Kaggle)
    ├── locks/<key>.lock[.owner]      one cross-process lock per entry, and its owner
    └── tmp/<keyhash>.<pid>.<n>.<host>/   staging folders, renamed into models/ when done

Keys (``/``-separated, each segment a plain name; ``~`` joins a variable-depth path, so
every key of a source has the same depth and no entry can sit inside another)::

    kaggle/<owner>/<model>/<framework>/<variation>/<version>      (lower-case)
    tfhub/<publisher>/<name~...>/<version>        only when no Kaggle redirect was seen
    url/<host>/<name>-<sha256(url)[:16]>
    gs|s3/<bucket>/<path~...>
    hf/<org>/<repo>/<revision>/<subfolder~... or @root>
    local/<archive name>-<sha256(path)[:16]>~<size>-<mtime>
    <anything else>                               ``build_entry`` keys, e.g. zoo/lite0/fv/1

Targets (for :func:`verify` and :func:`remove`) are cache keys as :func:`list_entries`
shows them, such as ``kaggle/google/bert/tensorflow2/en-uncased/3``, or handles, such as
``kaggle://google/bert/tensorFlow2/en-uncased`` (a Kaggle handle without a version
means every cached version).

Example:
    >>> import tempfile
    >>> from hublayer import cache
    >>> root = tempfile.mkdtemp()
    >>> path = cache.build_entry(
    ...     "zoo/tiny/1", lambda d: (d / "weights.bin").write_bytes(b"42"), cache_dir=root
    ... )
    >>> [(e.key, e.size) for e in cache.list_entries(cache_dir=root)]
    [('zoo/tiny/1', 2)]
    >>> cache.verify(cache_dir=root)[0].ok
    True
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from hublayer.errors import HandleError, NotCachedError
from hublayer.handles._cache import Cache, CacheEntry, validate_key
from hublayer.handles._handles import KaggleHandle, LocalHandle
from hublayer.handles._manifest import Manifest, check_hashes
from hublayer.handles._parse import parse_handle

__all__ = [
    "CacheEntry",
    "EntryCheck",
    "build_entry",
    "list_entries",
    "prune",
    "remove",
    "verify",
]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class EntryCheck:
    """The result of verifying one entry: ``problems`` is empty when it is intact."""

    entry: CacheEntry
    problems: tuple[str, ...]
    #: The content digest the re-hash confirmed (``"sha256:<hex>"``); empty when damaged.
    digest: str = ""

    @property
    def ok(self) -> bool:
        """Whether every file is present with its recorded size and sha256."""
        return not self.problems


def _keys_for(store: Cache, target: str) -> list[str]:
    """Cache keys that ``target`` (a key or a handle) names; empty when none is cached."""
    if "://" not in target and store.manifest_path(target).is_file():
        return [validate_key(target)]
    handle = parse_handle(target)
    if isinstance(handle, LocalHandle):  # keyed by path, size and mtime: every version
        prefix = handle.key + "~"
        return [k for k in store.entry_keys() if k.startswith(prefix)]
    if isinstance(handle, KaggleHandle) and handle.version is None:
        prefix = handle.with_version(1).key.rsplit("/", 1)[0] + "/"
        return [k for k in store.entry_keys() if k.startswith(prefix)]
    key = store.canonical(handle.key)
    return [key] if store.manifest_path(key).is_file() else []


def _resolve_targets(store: Cache, targets: tuple[str, ...]) -> list[str]:
    if not targets:
        return store.entry_keys()
    keys: list[str] = []
    for target in targets:
        found = _keys_for(store, target)
        if not found:
            raise NotCachedError(
                f"Expected a cached entry for {target!r}. Received: no such key or handle "
                f"in the cache at {store.root}. Run `hublayer cache ls` to see the keys.",
                handle=target,
                path=str(store.root),
            )
        keys.extend(k for k in found if k not in keys)
    return keys


def list_entries(*, cache_dir: PathLike | None = None) -> list[CacheEntry]:
    """Every complete entry in the cache, sorted by key.

    Args:
        cache_dir: the cache folder; defaults to ``config.cache_dir()``.

    Returns:
        One :class:`CacheEntry` per entry: key, path, handle, size (bytes), number of
        files, creation time and last use (seconds since the epoch).

    Example:
        >>> list_entries(cache_dir="/nonexistent")
        []
    """
    store = Cache.at(cache_dir)
    return [e for key in store.entry_keys() if (e := store.entry(key)) is not None]


def verify(*targets: str, cache_dir: PathLike | None = None) -> list[EntryCheck]:
    """Re-hash entries against their manifests; a damaged entry is marked incomplete.

    Every file is read back and its sha256 compared with the manifest, so the entry's
    content digest (what a pin checks) is confirmed too. An entry that
    fails loses its completion marker, so the next ``resolve`` fetches it again (or,
    offline, says how to repair it).

    Args:
        *targets: keys or handles; none means every entry.
        cache_dir: the cache folder; defaults to ``config.cache_dir()``.

    Returns:
        One :class:`EntryCheck` per entry, in key order.

    Raises:
        NotCachedError: a target names nothing in the cache.
        CacheLockError: another process held an entry's lock too long.

    Example:
        >>> [c.ok for c in verify(cache_dir="/nonexistent")]
        []
    """
    store = Cache.at(cache_dir)
    checks: list[EntryCheck] = []
    for key in _resolve_targets(store, targets):
        with store.lock(key):
            entry = store.entry(key)
            if entry is None:
                continue
            manifest = Manifest.from_json(store.manifest_path(key).read_bytes())
            problems = tuple(check_hashes(entry.path, manifest))
            if problems:
                store.invalidate(key)
            checks.append(EntryCheck(entry, problems, "" if problems else manifest.digest))
    return checks


def remove(*targets: str, cache_dir: PathLike | None = None) -> list[CacheEntry]:
    """Delete entries (and the aliases that point to them).

    Args:
        *targets: keys or handles, at least one.
        cache_dir: the cache folder; defaults to ``config.cache_dir()``.

    Returns:
        The entries removed.

    Raises:
        NotCachedError: a target names nothing in the cache (nothing is removed then).
        HandleError: no target was given, or a target is not a key nor a handle.

    Example:
        >>> remove("zoo/missing/1", cache_dir="/nonexistent")
        Traceback (most recent call last):
        ...
        hublayer.errors.NotCachedError: Expected a cached entry for 'zoo/missing/1'...
    """
    store = Cache.at(cache_dir)
    if not targets:
        raise HandleError(
            "Expected at least one key or handle to remove. Received: none. "
            "Use prune() to remove old entries.",
            handle=None,
        )
    removed: list[CacheEntry] = []
    for key in _resolve_targets(store, targets):
        with store.lock(key):
            entry = store.entry(key)
            store.delete(key)
            if entry is not None:
                removed.append(entry)
    return removed


def prune(
    older_than: timedelta | float | None = None,
    *,
    cache_dir: PathLike | None = None,
    dry_run: bool = False,
) -> list[CacheEntry]:
    """Remove entries not used for ``older_than``, and what crashed downloads left.

    Args:
        older_than: a :class:`~datetime.timedelta` or seconds. None removes no entry,
            only leftovers (staging folders of processes that died).
        cache_dir: the cache folder; defaults to ``config.cache_dir()``.
        dry_run: list what would be removed, and remove nothing.

    Returns:
        The entries removed (or that would be, with ``dry_run``).

    Example:
        >>> from datetime import timedelta
        >>> prune(timedelta(days=30), cache_dir="/nonexistent", dry_run=True)
        []
    """
    store = Cache.at(cache_dir)
    if not dry_run:
        for path in store.leftovers():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    if older_than is None:
        return []
    seconds = older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
    cutoff = time.time() - float(seconds)
    stale = [e for e in list_entries(cache_dir=store.root) if e.last_used < cutoff]
    if dry_run:
        return stale
    removed = []
    for entry in stale:
        with store.lock(entry.key):
            current = store.entry(entry.key)
            if current is not None and current.last_used < cutoff:
                store.delete(entry.key)
                removed.append(current)
    return removed


def build_entry(
    key: str,
    build: Callable[[Path], object],
    *,
    cache_dir: PathLike | None = None,
) -> Path:
    """Create entry ``key`` with files you make yourself, atomically; or return it if done.

    Under the entry's lock, ``build(folder)`` fills a fresh staging folder unique to this
    process; then the manifest (path, size, sha256 of each file) is written and the
    folder renamed into place. If ``build`` raises, nothing is left behind. If a
    complete, undamaged entry already exists, it is returned and ``build`` is not called.

    Args:
        key: ``'/'``-separated names, such as ``"zoo/efficientnet-lite0/feature-vector/1"``.
            Keys of the handle sources (``kaggle/...``, ``tfhub/...``) are allowed, which
            pre-fills the cache for that handle (key forms: see this module).
        build: called with an existing, empty folder to write the model into.
        cache_dir: the cache folder; defaults to ``config.cache_dir()``.

    Returns:
        The entry's folder.

    Raises:
        HandleError: ``key`` is not a valid key, or nests inside (or around) another.
        CacheLockError: another process held the entry's lock too long.

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> p = build_entry("zoo/x/1", lambda d: (d / "a.txt").write_text("hi"), cache_dir=root)
        >>> (p / "a.txt").read_text(), p.parts[-4:]
        ('hi', ('models', 'zoo', 'x', '1'))
    """
    validate_key(key)
    store = Cache.at(cache_dir)
    hit = store.lookup(key)
    if hit.path is not None:
        return hit.path
    with store.lock(key):
        hit = store.lookup(key)
        if hit.path is not None:
            return hit.path
        store.clear_stale(key)
        with store.staging(key) as staged:
            staged.mkdir()
            build(staged)
            manifest = Manifest.scan(staged, key=key, handle=f"built:{key}")
            return store.commit(key, staged, manifest)
