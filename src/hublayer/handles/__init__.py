"""Model handles: parse a handle string, and resolve it to a trusted local folder.

Handles never import TensorFlow. See :mod:`hublayer.handles._parse` for the accepted
forms, and :mod:`hublayer.cache` for the cache they resolve into.

Example:
    >>> from hublayer.handles import parse_handle
    >>> parse_handle("kaggle://google/bert/tensorFlow2/en-uncased")
    KaggleHandle(owner='google', model='bert', framework='tensorFlow2', variation='en-uncased', version=None)
"""  # noqa: E501

from hublayer.handles._handles import (
    Handle,
    HfHandle,
    HttpHandle,
    KaggleHandle,
    LocalHandle,
    StoreHandle,
    TfhubHandle,
)
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
    "list_entries",
    "parse_handle",
    "prune",
    "read_entry_note",
    "remove",
    "resolve",
    "verify",
    "write_entry_note",
]
