"""``resolve``: a handle in, a trusted local path out.

The fast path (a complete entry whose files all have their recorded sizes) parses the
handle (memoized), ``stat``s the manifest (parsed again only when it changed) and each
listed file: no lock, no hashing, no network (its time is the ``resolve`` case of
``benchmarks/RESULTS.md``).
Everything else happens under the entry's cross-process lock, so of N processes asking
at once exactly one downloads and the others then use its result.

A pin (``HANDLE@sha256:…``, or the handle's entry in the lock file) is checked against
the content digest: on the fast path the one the manifest records (no re-hash); for a
download, the one computed from the hashes taken while unpacking, before the entry is
committed; for a folder used in place, by hashing it. A mismatch raises
:class:`~hublayer.errors.IntegrityError` and leaves no complete entry of that content.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hublayer import config
from hublayer.errors import (
    CorruptEntryError,
    DownloadError,
    NotCachedError,
)
from hublayer.handles._cache import Cache, Lookup
from hublayer.handles._digest import content_digest
from hublayer.handles._expected import Expected, checked, expected_for, mismatch
from hublayer.handles._handles import (
    Handle,
    HfHandle,
    HttpHandle,
    KaggleHandle,
    LocalHandle,
    StoreHandle,
    TfhubHandle,
)
from hublayer.handles._manifest import Manifest
from hublayer.handles._parse import parse_handle
from hublayer.handles._parse_pin import split_pin
from hublayer.handles._resolvers import LocalResolver, UrlResolver
from hublayer.handles._stage import Resolver, Session, Stage, log
from hublayer.handles._stores import HfResolver, StoreResolver
from hublayer.handles._uncompressed import gcs_location, reads_in_place

__all__ = ["Expected", "Resolved", "resolve", "resolve_pinned"]

_URL = UrlResolver()

#: Which resolver serves which handle type; one ordered, immutable table.
RESOLVERS: tuple[tuple[type[Any], Resolver[Any]], ...] = (
    (LocalHandle, LocalResolver()),
    (TfhubHandle, _URL),
    (KaggleHandle, _URL),
    (HttpHandle, _URL),
    (StoreHandle, StoreResolver()),
    (HfHandle, HfResolver()),
)


_BY_TYPE: dict[type[Any], Resolver[Any]] = dict(RESOLVERS)


def _resolver(handle: Handle) -> Resolver[Any]:
    found = _BY_TYPE.get(type(handle))  # exact type first: one dict lookup per resolve
    if found is not None:
        return found
    return next(r for kind, r in RESOLVERS if isinstance(handle, kind))


def _offline_error(handle: Handle, hit: Lookup, cache: Cache) -> Exception:
    if hit.problems:
        shown = "; ".join(hit.problems[:3]) + (" ..." if len(hit.problems) > 3 else "")
        return CorruptEntryError(
            f"Expected the cached entry {hit.key} to match its manifest. Received: {shown}. "
            f"Offline mode is on, so it cannot be fetched again: run `hublayer fetch "
            f"{handle}` with network access, or `hublayer cache rm {hit.key}`.",
            handle=str(handle),
            path=str(cache.entry_dir(hit.key)),
            problems=hit.problems,
        )
    return NotCachedError(
        f"Expected {handle} in the cache at {cache.root} (offline mode is on). Received: no "
        f"complete entry {hit.key}. Run `hublayer fetch {handle}` with network access, or "
        "unset HUBLAYER_OFFLINE.",
        handle=str(handle),
        path=str(cache.entry_dir(hit.key)),
    )


@dataclass(frozen=True)
class Resolved:
    """What :func:`resolve_pinned` found: the path, the handle (a Kaggle handle with the
    version it got) and the content digest (empty when it was not needed)."""

    path: str
    handle: Handle | str
    digest: str


def _hit_digest(hit: Lookup, cache: Cache) -> str:
    """A complete entry's content digest: recorded, or (an old manifest) hashed."""
    if hit.manifest is not None and hit.manifest.digest:
        return hit.manifest.digest
    return content_digest(cache.entry_dir(hit.key))


def _build(
    handle: Handle, key: str, session: Session, resolver: Resolver[Any], expected: Expected | None
) -> tuple[Path, str]:
    """Fetch ``handle`` into entry ``key``; the caller holds ``key``'s lock.

    Returns:
        The path and the content digest, checked against ``expected`` before the entry
        was committed.
    """
    cache = session.cache
    cache.clear_stale(key)
    with cache.staging(key) as path:
        stage = Stage(session, key, path, str(handle))
        try:
            existing = resolver.fetch(handle, stage)
            if existing is not None:  # a complete entry found on the way (same digest)
                return existing, stage.reused_digest or content_digest(existing)
            manifest = Manifest.scan(
                path,
                key=stage.key,
                handle=str(handle),
                known=stage.known,
                main=stage.main,
                source=stage.source,
            )
            if expected is not None and manifest.digest != expected.digest:
                where = stage.source.get("final_url") or stage.source.get("url") or "downloaded"
                raise mismatch(
                    handle,
                    expected,
                    manifest.digest,
                    f"downloaded from {where}",
                    handle,
                    ", and the download was not kept",
                )
            result = cache.commit(stage.key, path, manifest)
            if stage.alias_of is not None:
                cache.write_alias(stage.alias_of, stage.key)
            return result, manifest.digest
        finally:
            stage.release()


def _cached_by_key(
    handle: str | Handle, cache_dir: str | os.PathLike[str] | None
) -> tuple[str, Lookup, Cache] | None:
    """The entry named by what ``hublayer cache ls`` prints: ``built:KEY`` (an entry
    built locally, e.g. by the zoo), or a bare cache key that is no local path.

    Raises:
        NotCachedError: ``built:KEY`` and no complete entry ``KEY`` (it cannot be fetched).
    """
    if not isinstance(handle, str) or "://" in handle:
        return None
    key = handle.removeprefix("built:")
    built = key != handle
    if not built and (os.path.exists(handle) or os.path.isabs(handle) or "/" not in handle):
        return None
    cache = Cache.at(cache_dir)
    try:
        hit = cache.lookup(key)
    except (ValueError, OSError):
        hit = None
    if hit is not None and hit.path is not None:
        return str(hit.path), hit, cache
    if built:
        raise NotCachedError(
            f"Expected a complete cache entry {key!r} for handle={handle!r} (a `built:` "
            f"handle names a model built locally, which cannot be downloaded). Received: "
            f"none in {str(cache.root)!r}. Build it again (for the zoo models, "
            "`hublayer demo` or hublayer.zoo builds them), or check --cache-dir.",
            handle=handle,
            path=str(cache.root),
        )
    return None


def resolve(
    handle: str | Handle,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    force_download: bool = False,
    load_format: str | None = None,
) -> str:
    """Turn a model handle into a local path whose files are complete and intact.

    Accepts a local folder or archive, ``file://``, tfhub.dev and Kaggle handles, any
    http(s) archive URL, ``gs://`` / ``s3://`` (extras ``[gcs]`` / ``[s3]``) and
    ``hf://`` (extra ``[hf]``); see :func:`hublayer.handles.parse_handle`. Local folders
    are used in place; everything else is cached (see :mod:`hublayer.cache`).

    Any of them may be pinned, ``HANDLE@sha256:<64 hex>``: the content must have that
    digest (:func:`hublayer.handles.content_digest`), or :class:`IntegrityError` is
    raised and nothing is loaded. An unpinned handle listed in the lock file
    (``$HUBLAYER_LOCKFILE``, else ``./hublayer.lock``) is checked against its entry there.
    A pinned handle is always copied into the cache, whatever ``load_format``.

    Args:
        handle: the model handle.
        cache_dir: the cache folder; defaults to ``config.cache_dir()``
            (``$HUBLAYER_CACHE_DIR``, else ``$TFHUB_CACHE_DIR``, else ``~/.cache/hublayer``).
        offline: never use the network; defaults to ``$HUBLAYER_OFFLINE``.
        force_download: fetch again even when a complete entry exists.
        load_format: ``"AUTO"`` or ``"COMPRESSED"`` download archives into the cache;
            ``"UNCOMPRESSED"`` asks a tfhub.dev, Kaggle or tf-hub http(s) server for the
            model's ``gs://`` folder and returns it, to be read in place (no copy, no
            cache entry), as tensorflow_hub does. Defaults to
            ``$TFHUB_MODEL_LOAD_FORMAT``. Offline, the cache is used whatever the format.

    Returns:
        The path of the model folder (or of the model file, for single-file handles);
        with ``UNCOMPRESSED``, the ``gs://`` folder for those handles.

    Raises:
        HandleError: the handle fits no accepted form, or more than one, or its pin is
            malformed (not ``@sha256:`` and 64 hex digits).
        IntegrityError: the content differs from the pin (or the lock file entry); both
            digests are in the message, and no cache entry of that content is left.
        LockFileError: the lock file is unreadable, or ``$HUBLAYER_LOCKED=1`` and the
            handle is neither pinned nor listed.
        NotCachedError: offline, and the handle is not cached.
        CorruptEntryError: offline, and the cached entry is damaged.
        ModelNotFoundError: a local path does not exist or is not a readable archive.
        InvalidModelError: with ``UNCOMPRESSED``, the server named no ``gs://`` folder.
        DownloadError: the server failed after retries, or sent no valid archive.
        UnsafeArchiveError: the archive would write outside its entry, or is too big.
        InsufficientSpaceError: the disk is too full for the download.
        CacheLockError: another process held the entry's lock too long.

    Example:
        >>> import hublayer, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> hublayer.resolve(folder) == folder
        True
    """
    return resolve_pinned(
        handle,
        cache_dir=cache_dir,
        offline=offline,
        force_download=force_download,
        load_format=load_format,
    ).path


def resolve_pinned(
    handle: str | Handle,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    force_download: bool = False,
    load_format: str | None = None,
    use_lock: bool = True,
    want_digest: bool = False,
) -> Resolved:
    """:func:`resolve`, returning the handle it resolved and the content digest too.

    Args:
        use_lock: check unpinned handles against the lock file (and strict mode).
        want_digest: compute the digest even without a pin (a folder used in place is
            hashed then); else ``Resolved.digest`` may be empty.
    """
    text: str | Handle = handle
    pin = None
    if isinstance(handle, str):
        text, pin = split_pin(handle)
    cached = None if force_download else _cached_by_key(text, cache_dir)
    if cached is not None:  # a key or `built:` handle, as `hublayer cache ls` prints them
        path, hit, cache = cached
        assert isinstance(text, str)  # _cached_by_key answers strings only
        expected = expected_for(text, pin, text.strip(), use_lock)
        digest = _hit_digest(hit, cache) if expected or want_digest else ""
        checked(text, expected, digest, f"the cache entry {hit.key}", path)
        return Resolved(path, text, digest)
    parsed = parse_handle(text)
    expected = expected_for(str(text), pin, parsed, use_lock)
    resolver = _resolver(parsed)
    is_offline = config.offline(offline)
    in_place = (
        not is_offline
        and expected is None
        and not want_digest
        and reads_in_place(parsed)
        and config.model_load_format(load_format) == "UNCOMPRESSED"
    )
    session = Session(
        cache=Cache.at(cache_dir),
        offline=is_offline,
        force=force_download,
        expected=None if expected is None else expected.digest,
    )
    try:
        parsed, where = resolver.locate(parsed, session)
        if in_place:
            return Resolved(gcs_location(parsed, session.client()), parsed, "")
        if isinstance(where, Path):
            digest = content_digest(where) if expected or want_digest else ""
            checked(parsed, expected, digest, f"the files at {where}", where)
            return Resolved(str(where), parsed, digest)
        cache = session.cache
        if not force_download:
            hit = cache.lookup(where)
            if hit.path is not None:
                digest = _hit_digest(hit, cache) if expected or want_digest else ""
                if expected is None or digest == expected.digest:
                    return Resolved(str(hit.path), parsed, digest)
                if is_offline:
                    raise mismatch(parsed, expected, digest, "the cached copy", hit.path)
                log.warning(
                    "Cache entry %s holds other content (%s) than %s pins (%s); fetching "
                    "it again.", hit.key, digest, parsed, expected.digest
                )  # fmt: skip
            elif is_offline:
                raise _offline_error(parsed, hit, cache)
            elif hit.problems:
                log.warning(
                    "Cache entry %s is damaged (%s); fetching it again.", hit.key, hit.problems
                )
        elif is_offline:
            raise DownloadError(
                f"Expected network access to force a new download of {parsed}. Received: "
                "offline mode on. Pass offline=False or unset HUBLAYER_OFFLINE.",
                handle=str(parsed),
            )
        with cache.lock(where) as lock:
            if lock.took_over is not None:
                log.warning("Took over the lock of %s from %s.", where, lock.took_over.describe())
            hit = cache.lookup(where)
            if session.reusable(hit):
                digest = _hit_digest(hit, cache) if expected or want_digest else ""
                return Resolved(str(hit.path), parsed, digest)
            built, digest = _build(parsed, where, session, resolver, expected)
            return Resolved(str(built), parsed, digest)
    finally:
        session.close()
