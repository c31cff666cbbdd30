"""What a resolver works with: the session of one resolve, and the entry being staged.

The resolver contract is two methods (see :class:`Resolver`)::

    locate(handle, session) -> (handle, key or path)   no download; may pin a version
    fetch(handle, stage)    -> None or an existing path fill stage.path with the files

Everything else (the fast cache lookup, the lock, offline errors, manifests, commit and
aliases) is done once, by :func:`hublayer.handles.resolve`, for every resolver.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from hublayer import config
from hublayer.handles._cache import Cache, Lookup
from hublayer.handles._lock import EntryLock

if TYPE_CHECKING:  # httpx is imported only when something is downloaded
    import httpx

__all__ = ["Resolver", "Session", "Stage", "log"]

log = logging.getLogger("hublayer.handles")

H = TypeVar("H")


@dataclass
class Session:
    """Settings and shared objects for one call of ``resolve``."""

    cache: Cache
    offline: bool
    force: bool
    #: The content digest the result must have (a pin), or None.
    expected: str | None = None
    _client: httpx.Client | None = field(default=None, repr=False)

    @property
    def progress(self) -> bool:
        """Whether to draw progress bars (read when a download starts)."""
        return config.progress()

    @property
    def limit(self) -> int:
        """The most bytes one archive may unpack to."""
        return config.max_unpack_bytes()

    def reusable(self, hit: Lookup) -> bool:
        """Whether a complete entry found on the way may be used as is (not forced, and
        with the pinned content when there is a pin)."""
        if self.force or hit.path is None or hit.manifest is None:
            return False
        return self.expected is None or hit.manifest.digest == self.expected

    def client(self) -> httpx.Client:
        """The HTTP client, created on first use."""
        if self._client is None:
            from hublayer.handles._http import new_client

            self._client = new_client()
        return self._client

    def close(self) -> None:
        """Close the HTTP client if one was made."""
        if self._client is not None:
            self._client.close()
            self._client = None


@dataclass
class Stage:
    """One entry being built: fill :attr:`path` (not yet created) with the model's files."""

    session: Session
    key: str
    path: Path
    handle: str
    #: ``{relative path: (size, sha256)}`` already computed while writing.
    known: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: A file inside the entry that resolve returns instead of the folder.
    main: str | None = None
    #: Provenance for the manifest (never secrets such as signed-URL queries).
    source: dict[str, Any] = field(default_factory=dict)
    #: The spelling key the stage started with, when a redirect moved it.
    alias_of: str | None = None
    #: The content digest of the complete entry :meth:`rekey` found, when it found one.
    reused_digest: str = ""
    _locks: list[EntryLock] = field(default_factory=list, repr=False)

    def rekey(self, key: str) -> Path | None:
        """Move this stage to canonical ``key`` (a Kaggle identity seen in a redirect).

        Returns:
            The existing entry's path when ``key`` is already complete (an alias is
            written, and nothing needs downloading), else None: the caller goes on, now
            holding ``key``'s lock as well, and the result is committed under ``key``.
        """
        if key == self.key:
            return None
        cache = self.session.cache
        hit = cache.lookup(key)
        if not self.session.reusable(hit):
            lock = cache.lock(key)
            lock.acquire()
            self._locks.append(lock)
            hit = cache.lookup(key)
        if self.session.reusable(hit) and hit.manifest is not None:
            cache.write_alias(self.key, key)
            self.reused_digest = hit.manifest.digest
            return hit.path
        cache.clear_stale(key)
        log.info("%s is %s; caching it under that key", self.handle, key)
        self.alias_of = self.alias_of or self.key
        self.key = key
        return None

    def release(self) -> None:
        """Release locks taken by :meth:`rekey`."""
        while self._locks:
            self._locks.pop().release()


class Resolver(Protocol[H]):
    """Turns one kind of handle into cache entries: two methods."""

    def locate(self, handle: H, session: Session) -> tuple[H, str | Path]:
        """Pin ``handle`` and say where it lives, without downloading.

        Returns:
            The handle (a Kaggle handle gets its newest version), and its cache key, or
            a local path to use in place (no cache).
        """
        ...

    def fetch(self, handle: H, stage: Stage) -> Path | None:
        """Write the model's files into ``stage.path``.

        Returns:
            None when the stage was filled; or the path of an existing complete entry
            found on the way (after :meth:`Stage.rekey`), which is then used as is.
        """
        ...
