"""Model handles: parse a handle string, and resolve it to a trusted local folder.

Handles never import TensorFlow. See :mod:`hublayer.handles._parse` for the accepted
forms, and :mod:`hublayer.cache` for the cache they resolve into.

Example:
    >>> from hublayer.handles import parse_handle
    >>> parse_handle("kaggle://google/bert/tensorFlow2/en-uncased")
    KaggleHandle(owner='google', model='bert', framework='tensorFlow2', variation='en-uncased', version=None)
"""  # noqa: E501

from __future__ import annotations

from typing import TYPE_CHECKING

from hublayer._lazy import lazy_names

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from hublayer.handles._digest import content_digest, digest_records
    from hublayer.handles._handles import (
        Handle,
        HfHandle,
        HttpHandle,
        KaggleHandle,
        LocalHandle,
        StoreHandle,
        TfhubHandle,
    )
    from hublayer.handles._lockfile import read_lock_file
    from hublayer.handles._maintenance import (
        CacheEntry,
        EntryCheck,
        build_entry,
        list_entries,
        prune,
        remove,
        verify,
    )
    from hublayer.handles._notes import read_entry_note, write_entry_note
    from hublayer.handles._parse import SCHEMES, Scheme, parse_handle
    from hublayer.handles._parse_pin import split_pin
    from hublayer.handles._pin import pin, write_lock_file
    from hublayer.handles._resolve import resolve

__all__ = [
    "CacheEntry",
    "EntryCheck",
    "Handle",
    "HfHandle",
    "HttpHandle",
    "KaggleHandle",
    "LocalHandle",
    "SCHEMES",
    "Scheme",
    "StoreHandle",
    "TfhubHandle",
    "build_entry",
    "content_digest",
    "digest_records",
    "list_entries",
    "parse_handle",
    "pin",
    "prune",
    "read_entry_note",
    "read_lock_file",
    "remove",
    "resolve",
    "split_pin",
    "verify",
    "write_entry_note",
    "write_lock_file",
]

# name -> private module that defines it. Names load on first use, so a process that
# only reads an entry note, or parses a handle, does not import the download machinery.
_LAZY: dict[str, str] = {
    "CacheEntry": "._maintenance",
    "EntryCheck": "._maintenance",
    "Handle": "._handles",
    "HfHandle": "._handles",
    "HttpHandle": "._handles",
    "KaggleHandle": "._handles",
    "LocalHandle": "._handles",
    "SCHEMES": "._parse",
    "Scheme": "._parse",
    "StoreHandle": "._handles",
    "TfhubHandle": "._handles",
    "build_entry": "._maintenance",
    "content_digest": "._digest",
    "digest_records": "._digest",
    "list_entries": "._maintenance",
    "parse_handle": "._parse",
    "pin": "._pin",
    "prune": "._maintenance",
    "read_entry_note": "._notes",
    "read_lock_file": "._lockfile",
    "remove": "._maintenance",
    "resolve": "._resolve",
    "split_pin": "._parse_pin",
    "verify": "._maintenance",
    "write_entry_note": "._notes",
    "write_lock_file": "._pin",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
