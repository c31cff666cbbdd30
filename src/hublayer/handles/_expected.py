"""The content digest a resolve must find, and the error when it finds another.

A handle's expected digest comes from its pin (``HANDLE@sha256:...``), else from its
entry in the lock file in force; in strict mode (``HUBLAYER_LOCKED=1``) a handle with
neither is refused. :func:`mismatch` builds the :class:`~hublayer.errors.IntegrityError`
that names both digests, what pinned the expected one, and how to pin the new content.

Example:
    >>> checked("h", Expected("sha256:" + "0" * 64, "pinned in the handle"),
    ...         "sha256:" + "0" * 64, "the files", "/m")[:10]
    'sha256:000'
"""

from __future__ import annotations

from dataclasses import dataclass

from hublayer import config
from hublayer.errors import Fix, IntegrityError, LockFileError
from hublayer.handles._handles import Handle
from hublayer.handles._lockfile import active_lock

__all__ = ["Expected", "checked", "expected_for", "mismatch"]


@dataclass(frozen=True)
class Expected:
    """The content digest a resolve must find, and what pinned it (for messages)."""

    digest: str
    pinned_by: str


def mismatch(
    handle: object,
    expected: Expected,
    received: str,
    where: str,
    path: object,
    kept: str = "",
) -> IntegrityError:
    return IntegrityError(
        f"Expected {handle} to have the content digest {expected.digest} "
        f"({expected.pinned_by}). Received: {received} ({where}). Nothing was loaded{kept}.",
        fix=Fix(
            "If the new content is the one you want, pin it again: hublayer.pin(handle) "
            "gives its pinned form, and hublayer.handles.write_lock_file(handle, "
            "update=True) rewrites its lock file entry.",
            f"If the new content is the one you want, pin it again: `hublayer pin {handle}` "
            f"prints its pinned form, and `hublayer lock --update {handle}` rewrites its "
            "lock file entry.",
        ),
        handle=str(handle),
        path=str(path),
        expected=expected.digest,
        received=received,
        pinned_by=expected.pinned_by,
    )


def expected_for(text: str, pin: str | None, key: Handle | str, use_lock: bool) -> Expected | None:
    """The digest ``text`` must have: its pin, else its lock file entry (or None)."""
    if pin is not None:
        return Expected(pin, "pinned in the handle")
    if not use_lock:
        return None
    lock = active_lock()
    found = None if lock is None else lock.digest_for(key)
    if lock is not None and found is not None:
        return Expected(found[1], f"the entry {found[0]!r} of the lock file {lock.path}")
    if config.locked():
        where = "no lock file is in force" if lock is None else f"{lock.path} does not list it"
        raise LockFileError(
            f"Expected a pinned handle (HANDLE@sha256:<64 hex>) or one the lock file lists "
            f"(HUBLAYER_LOCKED=1 is strict mode). Received: handle={text!r}, and {where}.",
            fix=Fix(
                "Pin it: hublayer.pin(handle) gives the pinned form; or add it to the lock "
                "file with hublayer.handles.write_lock_file(handle), or unset HUBLAYER_LOCKED.",
                f"Pin it (`hublayer pin {text}`), add it to the lock file (`hublayer lock "
                f"{text}`), or unset HUBLAYER_LOCKED.",
            ),
            handle=text,
            path=None if lock is None else str(lock.path),
        )
    return None


def checked(
    handle: object, expected: Expected | None, digest: str, where: str, path: object
) -> str:
    """``digest`` when it is the one expected (or nothing is); else IntegrityError."""
    if expected is not None and digest != expected.digest:
        raise mismatch(handle, expected, digest, where, path)
    return digest
