"""Resolvers for local paths and for URLs: plain http(s), tfhub.dev and Kaggle.

- :class:`LocalResolver`: a folder (or a non-archive file) is used in place; a local
  ``.tar.gz`` / ``.tgz`` / ``.zip`` is unpacked into the cache, keyed by its path, size
  and modification time, so an edited archive is unpacked again.
- :class:`UrlResolver`: requests the compressed tf-hub format and unpacks the archive
  while it streams in. When a redirect shows a Kaggle model identity
  (``/models/<owner>/<model>/<framework>/<variation>/<version>``, short or long form),
  the entry is keyed by it, so the tfhub.dev and Kaggle spellings share one entry. A
  Kaggle handle without a version is pinned to the newest one through the Kaggle API
  (``/api/v1/models/<owner>/<model>/<framework>/<variation>/get``), or offline to the
  newest cached one.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from urllib.parse import urlsplit

from hublayer import config
from hublayer.errors import DownloadError, ModelNotFoundError, NotCachedError
from hublayer.handles._archive import ArchiveFormatError, unpack
from hublayer.handles._handles import HttpHandle, KaggleHandle, LocalHandle, TfhubHandle
from hublayer.handles._parse import kaggle_handle_in
from hublayer.handles._stage import Session, Stage

__all__ = ["LocalResolver", "UrlResolver", "fetch_archive"]


class LocalResolver:
    """Folders and files in place; local archives unpacked into the cache."""

    def locate(self, handle: LocalHandle, session: Session) -> tuple[LocalHandle, str | Path]:
        try:
            st = os.stat(handle.path)
        except OSError:
            given = handle.given or str(handle.path)  # as written, as tensorflow_hub says it
            where = "" if given == str(handle.path) else f" ({handle.path})"
            raise ModelNotFoundError(
                f"{given} does not exist. Expected a model folder or file at {given}{where}. "
                "Received: nothing there. Check the path; remote models take a URL, such as "
                "https://tfhub.dev/<publisher>/<name>/<version> or kaggle://<owner>/<model>/"
                "<framework>/<variation>/<version>.",
                handle=str(handle),
                path=str(handle.path),
            ) from None
        if stat.S_ISDIR(st.st_mode) or not handle.is_archive:
            return handle, handle.path
        return handle, f"{handle.key}~{st.st_size}-{st.st_mtime_ns}"

    def fetch(self, handle: LocalHandle, stage: Stage) -> Path | None:
        try:
            stage.known = unpack(handle.path, stage.path, limit=stage.session.limit)
        except ArchiveFormatError as error:
            raise ModelNotFoundError(
                f"{handle.given or handle.path} does not appear to be a valid module. "
                f"Expected a tar or zip archive at {handle.path}. Received: {error}. Failed "
                f"to extract {handle.path}. Re-create the archive, or pass the unpacked "
                "folder instead.",
                handle=str(handle),
                path=str(handle.path),
            ) from None
        stage.source = {"path": str(handle.path)}
        return None


def _newest_cached(handle: KaggleHandle, session: Session) -> KaggleHandle:
    prefix = handle.with_version(1).key.rsplit("/", 1)[0] + "/"
    versions = sorted(
        (int(key[len(prefix) :]) for key in session.cache.entry_keys() if key.startswith(prefix)),
        reverse=True,
    )
    for version in versions:
        if session.cache.lookup(prefix + str(version)).path is not None:
            return handle.with_version(version)
    if versions:  # all damaged: let resolve report the newest one
        return handle.with_version(versions[0])
    raise NotCachedError(
        f"Expected a cached version of {handle} (offline mode is on). Received: none in "
        f"{session.cache.root}. Run `hublayer fetch {handle}` with network access, or "
        "unset HUBLAYER_OFFLINE.",
        handle=str(handle),
        path=str(session.cache.root),
    )


def _newest_online(handle: KaggleHandle, session: Session) -> KaggleHandle:
    from hublayer.handles._download import get_json  # httpx only when downloading

    url = f"{config.kaggle_endpoint()}/api/v1/models/{handle.instance}/get"
    data = get_json(session.client(), url, handle=str(handle))
    version = data.get("versionNumber") if isinstance(data, dict) else None
    if not isinstance(version, int) or version < 1:
        raise DownloadError(
            f"Expected the Kaggle API to name the newest version of {handle}. Received: "
            f"versionNumber={version!r} from {url}. Give the version in the handle, "
            "such as .../<variation>/1.",
            url=url,
            status=200,
            handle=str(handle),
        )
    return handle.with_version(version)


def _public(url: str) -> str:
    """``url`` without its query (signed URLs carry credentials there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class _Reuse:
    """Redirect hook: re-key on a Kaggle identity; stop if that entry is already complete."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.path: Path | None = None

    def __call__(self, hop: str) -> bool:
        identity = kaggle_handle_in(hop)
        if identity is not None:
            self.path = self.stage.rekey(identity.key)
        return self.path is not None


def fetch_archive(url: str, stage: Stage) -> Path | None:
    """Download ``url`` and unpack it into ``stage.path`` as it streams in.

    Re-keys the stage when the redirect chain shows a Kaggle model identity; returns the
    existing entry then if it is already complete. A body cut short without a
    ``Content-Length`` to tell is retried once from the start.

    Raises:
        DownloadError: the server failed, or sent something that is not an archive.
        UnsafeArchiveError: the archive tried to write outside its entry.
    """
    from hublayer.handles._download import CHUNK, RemoteFile  # httpx only when downloading

    session = stage.session
    attempt = 0
    while True:
        attempt += 1
        with RemoteFile(
            session.client(),
            url,
            space_dir=session.cache.root,
            progress=session.progress,
            handle=stage.handle,
        ) as remote:
            reuse = _Reuse(stage)
            if not remote.open(on_redirect=reuse):
                return reuse.path
            try:
                stage.known = unpack(remote, stage.path, limit=session.limit, name=url)
            except ArchiveFormatError as error:
                if attempt == 1 and remote.total is None and "not a tar" not in str(error):
                    shutil.rmtree(stage.path, ignore_errors=True)
                    continue
                raise DownloadError(
                    f"{stage.handle} does not appear to be a valid module. "
                    f"Expected {url} to send a tar or zip archive (the compressed tf-hub "
                    f"format). Received: {error}; Failed to extract {url}; Content-Type="
                    f"{remote.content_type!r}, {remote.offset} bytes. Check that the URL "
                    "serves a model archive.",
                    url=url,
                    status=remote.status,
                    handle=stage.handle,
                ) from None
            if remote.total is not None:
                while remote.read(CHUNK):  # the tail: padding, and the Content-Length check
                    pass
            stage.source = {
                "url": url,
                "final_url": _public(remote.chain[-1]),
                "etag": remote.validator,
                "bytes": remote.offset,
            }
            return None


class UrlResolver:
    """tfhub.dev, Kaggle and plain http(s) handles."""

    def locate(
        self, handle: TfhubHandle | KaggleHandle | HttpHandle, session: Session
    ) -> tuple[TfhubHandle | KaggleHandle | HttpHandle, str | Path]:
        if isinstance(handle, KaggleHandle) and handle.version is None:
            pin = _newest_cached if session.offline else _newest_online
            handle = pin(handle, session)
        return handle, handle.key

    def fetch(self, handle: TfhubHandle | KaggleHandle | HttpHandle, stage: Stage) -> Path | None:
        url = handle.request_url() if isinstance(handle, HttpHandle) else handle.url()
        return fetch_archive(url, stage)
