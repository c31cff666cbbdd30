"""The model cache: where entries live, how they are found, committed and removed.

The layout and the key forms are drawn in :mod:`hublayer.handles._maintenance` (once, there).

An entry is used only when its manifest exists and every listed file has its listed size
(one ``stat`` each, no hashing), checked on every lookup. A process keeps the manifests
it parsed and parses one again when its (device, inode, size, mtime, ctime) changed.
A commit runs under the entry's lock: stage in ``tmp/``, drop the old manifest, swap the
folder in with ``rename``, then write the new manifest. A crash at any point leaves either
the old complete entry, or no manifest (refetched).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hublayer import config
from hublayer.errors import HandleError
from hublayer.handles._manifest import Manifest, check_sizes

if TYPE_CHECKING:  # filelock is imported only when a lock is taken
    from hublayer.handles._lock import EntryLock

__all__ = ["Cache", "CacheEntry", "Lookup", "validate_key"]

_KEY = re.compile(r"[A-Za-z0-9@][A-Za-z0-9._+@=~-]*(/[A-Za-z0-9@][A-Za-z0-9._+@=~-]*)*")
_TOUCH_EVERY = 60.0  # seconds between last-use updates of one entry
_LEFTOVER_AGE = 24 * 3600.0  # other hosts' staging folders older than this are removed
_counter = itertools.count()


def validate_key(key: str) -> str:
    """Return ``key`` if it is a valid cache key, else raise HandleError saying why."""
    if not isinstance(key, str) or not _KEY.fullmatch(key) or len(key) > 400:
        raise HandleError(
            "Expected a cache key: '/'-separated names of letters, digits and ._+@=~- "
            f"(not starting with '.' or '-'), such as 'zoo/efficientnet-lite0/fv/1'. "
            f"Received: key={key!r}. Fix the key.",
            handle=str(key),
        )
    return key


@dataclass(frozen=True)
class CacheEntry:
    """One complete entry, as ``hublayer cache ls`` shows it."""

    key: str
    path: Path
    handle: str
    size: int
    files: int
    created: float
    last_used: float


@dataclass(frozen=True)
class Lookup:
    """What a fast lookup found: ``path`` is set only for a complete, undamaged entry."""

    key: str
    path: Path | None
    manifest: Manifest | None
    problems: tuple[str, ...] = ()


def _read(path: str) -> tuple[bytes, os.stat_result] | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        st = os.fstat(fd)
        chunks = []
        while chunk := os.read(fd, max(st.st_size, 4096)):
            chunks.append(chunk)
        return b"".join(chunks), st
    finally:
        os.close(fd)


def _signature(st: os.stat_result) -> tuple[int, ...]:
    """What changes when a manifest is rewritten (always a new file, renamed in)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class _Seen:
    """A manifest this process has parsed: its file's signature and what it says."""

    signature: tuple[int, ...]
    manifest: Manifest
    #: What :meth:`Cache.lookup` returns while the entry's files match the manifest.
    hit: Lookup
    #: The entry's folder.
    entry: str

    @functools.cached_property
    def expected(self) -> tuple[tuple[str, int], ...]:
        """``(absolute path, size)`` of each file, ``(absolute path, -1)`` of each link."""
        base = self.entry + os.sep
        files = [(base + rel, size) for rel, size, _ in self.manifest.files]
        return (*files, *((base + rel, -1) for rel, _ in self.manifest.links))


#: Manifests parsed by this process, by marker path (emptied when it reaches 256).
_SEEN: dict[str, _Seen] = {}
_SEEN_MAX = 256


def _remember(marker: str, seen: _Seen) -> None:
    if len(_SEEN) >= _SEEN_MAX:
        _SEEN.clear()  # simple and thread-safe; a process rarely uses this many models
    _SEEN[marker] = seen


def _sizes_match(expected: tuple[tuple[str, int], ...]) -> bool:
    """Whether every file exists with its size and every link exists: one stat each."""
    try:
        for path, size in expected:
            if size < 0:
                os.lstat(path)
            elif os.stat(path).st_size != size:
                return False
    except OSError:
        return False
    return True


class Cache:
    """One cache folder. Cheap to create; holds no open files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._base = str(root)

    @classmethod
    def at(cls, cache_dir: str | os.PathLike[str] | None = None) -> Cache:
        """The cache at ``cache_dir``, else the configured one."""
        return cls(config.cache_dir(cache_dir))

    # paths ---------------------------------------------------------------------------

    def entry_dir(self, key: str) -> Path:
        """The folder of entry ``key``."""
        return self.root / "models" / key

    def manifest_path(self, key: str) -> Path:
        """The completion marker of entry ``key``."""
        return self.root / "manifests" / f"{key}.json"

    def lock(self, key: str) -> EntryLock:
        """The cross-process lock of entry ``key`` (not yet acquired)."""
        path = self.root / "locks" / f"{key}.lock"
        from hublayer.handles._lock import EntryLock

        return EntryLock(path, timeout=config.lock_timeout())

    # fast path -----------------------------------------------------------------------

    def canonical(self, key: str) -> str:
        """``key``, or the key its alias file points to."""
        found = _read(f"{self._base}/aliases/{key}.json")
        if found is None:
            return key
        try:
            return validate_key(json.loads(found[0])["key"])
        except (ValueError, KeyError, TypeError):
            return key

    def lookup(self, key: str) -> Lookup:
        """Find entry ``key`` (following an alias) and check its files' sizes; no hashing.

        The manifest is parsed again only when its (device, inode, size, mtime, ctime) changed
        since this process last read it; the sizes of the entry's files are checked on
        every call, so damage is seen at once, in this process too.
        """
        key = self.canonical(key)
        marker = f"{self._base}/manifests/{key}.json"
        try:
            st = os.stat(marker)
        except (FileNotFoundError, NotADirectoryError):
            return Lookup(key, None, None)
        seen = _SEEN.get(marker)
        if seen is None or seen.signature != _signature(st):
            found = _read(marker)
            if found is None:
                return Lookup(key, None, None)
            data, st = found
            try:
                manifest = Manifest.from_json(data)
            except (ValueError, KeyError, TypeError):
                return Lookup(key, None, None, ("manifest: unreadable",))
            entry = f"{self._base}/models/{key}"
            path = Path(f"{entry}/{manifest.main}" if manifest.main else entry)
            seen = _Seen(_signature(st), manifest, Lookup(key, path, manifest), entry)
            _remember(marker, seen)
        if not _sizes_match(seen.expected):
            problems = check_sizes(seen.entry, seen.manifest)
            if problems:
                return Lookup(key, None, seen.manifest, tuple(problems))
        if time.time() - st.st_mtime > _TOUCH_EVERY:
            with contextlib.suppress(OSError):  # a read-only cache still resolves
                os.utime(marker)
        return seen.hit

    # writing -------------------------------------------------------------------------

    def _tmp_prefix(self, key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def clear_stale(self, key: str) -> None:
        """Remove staging folders of ``key`` left by dead processes (hold the lock)."""
        tmp = self.root / "tmp"
        if tmp.is_dir():
            for path in tmp.glob(self._tmp_prefix(key) + ".*"):
                _remove_tree(path)

    @contextlib.contextmanager
    def staging(self, key: str) -> Iterator[Path]:
        """A path unique to this process to build ``key`` in (not yet created).

        Whatever is left there when the block exits, normally or not, is removed.
        """
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        name = f"{self._tmp_prefix(key)}.{os.getpid()}.{next(_counter)}.{socket.gethostname()}"
        path = tmp / name
        try:
            yield path
        finally:
            _remove_tree(path)

    def _check_nesting(self, key: str) -> None:
        parts = key.split("/")
        for i in range(1, len(parts)):
            if (self.root / "manifests" / ("/".join(parts[:i]) + ".json")).exists():
                raise HandleError(
                    f"Expected cache keys that do not nest. Received: key={key!r}, inside "
                    f"the entry {'/'.join(parts[:i])!r}. Choose another key.",
                    handle=key,
                )
        if (self.root / "manifests" / key).is_dir():
            raise HandleError(
                f"Expected cache keys that do not nest. Received: key={key!r}, which holds "
                "other entries. Choose another key.",
                handle=key,
            )

    def commit(self, key: str, staged: Path, manifest: Manifest) -> Path:
        """Swap ``staged`` in as entry ``key`` and mark it complete (hold the lock).

        Returns:
            The path resolve returns: the entry folder, or its main file.
        """
        self._check_nesting(key)
        marker = self.manifest_path(key)
        entry = self.entry_dir(key)
        marker.unlink(missing_ok=True)
        if os.path.lexists(entry):
            trash = self.root / "tmp" / f"{self._tmp_prefix(key)}.trash.{os.getpid()}"
            os.rename(entry, trash)
            _remove_tree(trash)
        entry.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staged, entry)
        manifest.write(marker)
        return entry / manifest.main if manifest.main else entry

    def write_alias(self, key: str, canonical: str) -> None:
        """Record that spelling ``key`` is the same model as entry ``canonical``."""
        path = self.root / "aliases" / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": canonical}), encoding="utf-8")
        os.replace(tmp, path)

    def invalidate(self, key: str) -> None:
        """Mark entry ``key`` incomplete, so the next resolve fetches it again."""
        self.manifest_path(key).unlink(missing_ok=True)

    def delete(self, key: str) -> None:
        """Remove entry ``key`` and the aliases that point to it (hold the lock)."""
        self.invalidate(key)
        entry = self.entry_dir(key)
        if os.path.lexists(entry):
            trash = self.root / "tmp" / f"{self._tmp_prefix(key)}.trash.{os.getpid()}"
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.rename(entry, trash)
            _remove_tree(trash)
        for alias, target in self.aliases():
            if target == key:
                (self.root / "aliases" / f"{alias}.json").unlink(missing_ok=True)

    # listing -------------------------------------------------------------------------

    def entry_keys(self) -> list[str]:
        """Keys of every entry that has a manifest, sorted."""
        base = self.root / "manifests"
        if not base.is_dir():
            return []
        found = [p.relative_to(base).as_posix()[: -len(".json")] for p in base.rglob("*.json")]
        return sorted(k for k in found if _KEY.fullmatch(k))

    def aliases(self) -> list[tuple[str, str]]:
        """``(alias key, canonical key)`` pairs."""
        base = self.root / "aliases"
        pairs = []
        for path in base.rglob("*.json") if base.is_dir() else ():
            alias = path.relative_to(base).as_posix()[: -len(".json")]
            target = self.canonical(alias)
            if target != alias:
                pairs.append((alias, target))
        return sorted(pairs)

    def entry(self, key: str) -> CacheEntry | None:
        """The listing of complete entry ``key`` (manifest read, files not checked)."""
        found = _read(str(self.manifest_path(key)))
        if found is None:
            return None
        try:
            manifest = Manifest.from_json(found[0])
        except (ValueError, KeyError, TypeError):
            return None
        return CacheEntry(
            key=key,
            path=self.entry_dir(key),
            handle=manifest.handle,
            size=manifest.size,
            files=len(manifest.files),
            created=manifest.created,
            last_used=found[1].st_mtime,
        )

    def leftovers(self) -> list[Path]:
        """Staging and trash folders whose process is gone (or old, from another host)."""
        tmp = self.root / "tmp"
        from hublayer.handles._lock import pid_alive

        out: list[Path] = []
        host = socket.gethostname()
        for path in tmp.iterdir() if tmp.is_dir() else ():
            pid = _local_owner(path.name, host)
            if pid is not None:
                if not pid_alive(pid):
                    out.append(path)
                continue
            with contextlib.suppress(OSError):
                if time.time() - path.lstat().st_mtime > _LEFTOVER_AGE:
                    out.append(path)
        return sorted(out)


def _local_owner(name: str, host: str) -> int | None:
    """The pid that made ``tmp/<name>`` if it ran on this host, else None.

    Names are ``<keyhash>.<pid>.<n>.<host>[.suffix]`` (staging) or
    ``<keyhash>.trash.<pid>`` (a folder being deleted).
    """
    parts = name.split(".", 3)
    if len(parts) == 3 and parts[1] == "trash" and parts[2].isdigit():
        return int(parts[2])
    if len(parts) == 4 and parts[1].isdigit() and (parts[3] + ".").startswith(host + "."):
        return int(parts[1])
    return None


def _remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)
