"""The model cache: list, verify, remove and prune entries, or build one yourself.

A facade: the cache is owned by :mod:`hublayer.handles` (layout, locks, manifests and
these maintenance functions); its module docstring draws the cache tree.

Example:
    >>> import tempfile
    >>> from hublayer import cache
    >>> root = tempfile.mkdtemp()
    >>> path = cache.build_entry(
    ...     "zoo/tiny/1", lambda d: (d / "weights.bin").write_bytes(b"42"), cache_dir=root
    ... )
    >>> [(e.key, e.size) for e in cache.list_entries(cache_dir=root)]
    [('zoo/tiny/1', 2)]
"""

from __future__ import annotations

from hublayer import handles

CacheEntry = handles.CacheEntry
EntryCheck = handles.EntryCheck
build_entry = handles.build_entry
list_entries = handles.list_entries
prune = handles.prune
remove = handles.remove
verify = handles.verify

__all__ = ["CacheEntry", "EntryCheck", "build_entry", "list_entries", "prune", "remove", "verify"]
