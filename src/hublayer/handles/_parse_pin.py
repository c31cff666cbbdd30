"""Pinned handles: ``HANDLE@sha256:<64 hex>`` names exactly one content, or nothing.

The pin is the handle's last ``@``-suffix that looks like ``<algorithm>:<value>`` and has
no ``/`` after it. An ``@`` inside a URL's host part (``https://user:pw@host:8080``), an
``hf://org/repo@revision`` and an ``@`` inside a path segment followed by more path are
not pins. Only ``sha256`` is accepted, with exactly 64 hex digits (upper case is taken
and written lower case). The digest is the model's content digest, defined in
:mod:`hublayer.handles._digest`.

Example:
    >>> split_pin("kaggle://google/bert/tensorFlow2/en/3@sha256:" + "AB" * 32)[1][:15]
    'sha256:abababa'
    >>> split_pin("hf://google/bert@main/tf")
    ('hf://google/bert@main/tf', None)
"""

from __future__ import annotations

import functools
import re

from hublayer.errors import HandleError
from hublayer.handles._digest import DIGEST_PREFIX

__all__ = ["check_digest", "pinned", "split_pin"]

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_ALGORITHM = re.compile(r"[A-Za-z][A-Za-z0-9_+.-]*")
_FORM = "HANDLE@sha256:<64 hex digits>, such as kaggle://google/bert/tensorFlow2/en/3@sha256:4c1f…"


def _pin_error(handle: str, received: str, fix: str) -> HandleError:
    return HandleError(
        f"Expected a pinned handle as {_FORM}. Received: handle={handle!r}, {received}. {fix}",
        handle=handle,
    )


def check_digest(value: str, *, handle: str, where: str = "the pin") -> str:
    """``value`` (``sha256:<hex>``) as the normal lower-case digest, else HandleError."""
    algorithm, sep, hexdigits = value.partition(":")
    if not sep or not _ALGORITHM.fullmatch(algorithm):
        raise _pin_error(
            handle, f"{where} {value!r} has no algorithm", "Write it as sha256:<64 hex>."
        )
    if algorithm.lower() != "sha256":
        raise _pin_error(
            handle,
            f"{where} uses {algorithm!r}",
            "Only sha256 content digests are accepted; get one with `hublayer pin HANDLE`. "
            "(An '@' that belongs to a path: write it %40 in a file:// or http(s) URL.)",
        )
    if not _HEX64.fullmatch(hexdigits):
        if re.search(r"[^0-9a-fA-F]", hexdigits):
            received = f"{where} has characters that are not hex digits ({hexdigits!r})"
        else:
            received = f"{where} has {len(hexdigits)} hex digits, not 64"
        raise _pin_error(
            handle,
            received,
            "Copy the whole digest that `hublayer pin HANDLE` prints.",
        )
    return DIGEST_PREFIX + hexdigits.lower()


def _pin_at(text: str) -> int:
    """Where the pin's ``@`` is in ``text``, or -1 when it has none."""
    at = text.rfind("@")
    if at < 0:
        return -1
    tail = text[at + 1 :]
    if "/" in tail or not _ALGORITHM.match(tail) or ":" not in tail:
        return -1
    if not _ALGORITHM.fullmatch(tail.partition(":")[0]):
        return -1
    scheme_end = text.find("://")
    if scheme_end >= 0:
        host_end = text.find("/", scheme_end + 3)
        if host_end < 0 or at < host_end:  # user:password@host[:port]: not a pin
            return -1
    return at


@functools.lru_cache(maxsize=1024)
def _split(text: str) -> tuple[str, str | None]:
    at = _pin_at(text)
    if at < 0:
        return text, None
    bare = text[:at].strip()
    digest = check_digest(text[at + 1 :].strip(), handle=text)
    if not bare:
        raise _pin_error(text, "no handle before the '@'", "Put the handle first.")
    return bare, digest


def split_pin(handle: str) -> tuple[str, str | None]:
    """``(handle without its pin, digest or None)``.

    Raises:
        HandleError: a pin that is malformed: another algorithm (``@md5:``), not 64 hex
            digits, or nothing before the ``@``.
    """
    return _split(handle.strip())


def pinned(handle: str, digest: str) -> str:
    """``handle@digest``: the pinned spelling."""
    return f"{handle}@{digest}"
