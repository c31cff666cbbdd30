"""Streaming HTTP downloads that retry, resume with ``Range``, and check their length.

:class:`RemoteFile` is a read-only stream of one URL's body. It follows redirects (their
chain stays visible in :attr:`RemoteFile.chain`), retries the statuses and transport
errors :mod:`._http` names, with its backoff (honouring ``Retry-After``), and, when a
connection drops mid-body, reconnects with ``Range: bytes=<offset>-`` plus ``If-Range``.
A server that ignores ``Range`` is read again from the start and the bytes already seen
are skipped, so the consumer never notices. The body must have exactly its
``Content-Length``, and there must be that much free disk space before the first byte
is read.

A background thread receives the body while the caller reads it, so the network and
HTTP parsing overlap decompression and writing: a download is unpacked while it streams
in. Reads return exactly the bytes asked for (fewer only at the end), with one copy.

Example:
    >>> from hublayer.handles._http import new_client
    >>> with new_client() as client:  # doctest: +SKIP
    ...     with RemoteFile(client, "https://example.com/m.tar.gz", space_dir=Path(".")) as f:
    ...         head = f.read(512)
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from hublayer import config
from hublayer.errors import DownloadError, InsufficientSpaceError
from hublayer.handles._http import RETRY_ERRORS, RETRY_STATUSES, backoff, status_error

__all__ = ["CHUNK", "RemoteFile", "get_json"]

CHUNK = 1 << 20
_MAX_REDIRECTS = 20
_QUEUED_CHUNKS = 256  # received chunks (~64 KiB each) waiting for the reader
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class RemoteFile:
    """A read-once stream of ``url``'s body, with retries and ``Range`` resume.

    Args:
        client: the HTTP client (see :func:`new_client`).
        url: what to download; redirects are followed.
        space_dir: a folder on the disk the body will be written to, for the free-space
            check (None skips it).
        retries: attempts per connection; defaults to ``config.download_retries()``.
        progress: draw a progress bar; defaults to ``config.progress()``.
        handle: the handle, for error messages.
    """

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        *,
        space_dir: Path | None = None,
        retries: int | None = None,
        progress: bool | None = None,
        handle: str | None = None,
    ) -> None:
        self.client = client
        self.url = url
        self.space_dir = space_dir
        self.retries = config.download_retries(retries)
        self.handle = handle
        self.offset = 0
        self.total: int | None = None
        self.chain: list[str] = []
        self.validator: str | None = None
        self.status: int | None = None
        self.content_type: str | None = None
        self._progress = config.progress(progress)
        self._bar: Any = None
        self._response: httpx.Response | None = None
        self._chunks: Any = None
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(_QUEUED_CHUNKS)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rest = b""
        self._error: BaseException | None = None
        self._eof = False

    # connection ----------------------------------------------------------------------

    def _follow(
        self, headers: dict[str, str], on_redirect: Callable[[str], bool] | None
    ) -> httpx.Response | None:
        """One GET, following redirects by hand so ``on_redirect`` sees each hop first."""
        request = self.client.build_request("GET", self.url, headers=headers)
        self.chain = [self.url]
        for _ in range(_MAX_REDIRECTS):
            response = self.client.send(request, stream=True, follow_redirects=False)
            if not (response.is_redirect and response.next_request is not None):
                return response
            response.close()
            request = response.next_request
            self.chain.append(str(request.url))
            if on_redirect is not None and on_redirect(str(request.url)):
                return None
        raise httpx.TooManyRedirects(f"more than {_MAX_REDIRECTS} redirects", request=request)

    def _send(
        self, headers: dict[str, str], on_redirect: Callable[[str], bool] | None = None
    ) -> httpx.Response | None:
        """One request with retries on the named statuses and transport errors.

        Returns None when ``on_redirect`` stopped the chain.
        """
        last: str = "no attempt"
        response: httpx.Response | None = None
        for attempt in range(1, self.retries + 1):
            if attempt > 1:
                time.sleep(backoff(attempt - 1, response))
            response = None
            try:
                response = self._follow(headers, on_redirect)
            except RETRY_ERRORS as error:
                last = f"{type(error).__name__}: {error}"
                continue
            except httpx.HTTPError as error:  # too many redirects, bad URL, proxy...
                raise DownloadError(
                    f"Expected to reach {self.url}. Received: {type(error).__name__}: {error}. "
                    "Check the handle and your network settings.",
                    url=self.url,
                    handle=self.handle,
                ) from error
            if response is None:
                return None
            if response.status_code in RETRY_STATUSES:
                last = f"HTTP {response.status_code} {response.reason_phrase}"
                response.close()
                continue
            if response.status_code >= 400:
                response.close()
                raise status_error(self.url, response, self.handle)
            return response
        raise DownloadError(
            f"Expected {self.url} to answer within {self.retries} attempts. Received: {last}"
            f" (handle={self.handle!r}). Try again later, raise HUBLAYER_DOWNLOAD_RETRIES, "
            "or set HUBLAYER_OFFLINE=1 to use only cached models.",
            url=self.url,
            status=response.status_code if response is not None else None,
            handle=self.handle,
        )

    def open(self, on_redirect: Callable[[str], bool] | None = None) -> bool:
        """Send the first request (the body is not read yet), and check free disk space.

        Args:
            on_redirect: called with each redirect target before it is requested; when
                it returns True the chain stops there and nothing more is sent.

        Returns:
            True when the body is ready to read; False when ``on_redirect`` stopped.
        """
        response = self._send({}, on_redirect)
        if response is None:
            return False
        self._response = response
        self._chunks = response.iter_raw()
        self.status = response.status_code
        self.content_type = response.headers.get("content-type")
        length = response.headers.get("content-length")
        self.total = int(length) if length and length.isdigit() else None
        self.validator = response.headers.get("etag") or response.headers.get("last-modified")
        if self.total is not None and self.space_dir is not None:
            free = shutil.disk_usage(self.space_dir).free
            if free < self.total:
                self.close()
                raise InsufficientSpaceError(
                    f"Expected {self.total} free bytes to download {self.url}. Received: "
                    f"{free} bytes free under {self.space_dir}. Free some space, run "
                    "`hublayer cache prune`, or point HUBLAYER_CACHE_DIR elsewhere.",
                    path=str(self.space_dir),
                    needed=self.total,
                    free=free,
                )
        if self._progress:
            from tqdm.auto import tqdm

            name = str(response.url).split("?", 1)[0].rsplit("/", 1)[-1]
            self._bar = tqdm(
                total=self.total, unit="B", unit_scale=True, unit_divisor=1024,
                desc=name[:30], file=sys.stderr, leave=False,
            )  # fmt: skip
        return True

    def _resume(self, reason: str) -> None:
        """Reconnect after a cut at ``offset``; continue where the body stopped."""
        if self._response is not None:
            self._response.close()
        headers = {"Range": f"bytes={self.offset}-"} if self.offset else {}
        if self.offset and self.validator:
            headers["If-Range"] = self.validator
        response = self._send(headers)
        if response is None:  # pragma: no cover - no hook on resume
            raise AssertionError("resume requests have no redirect hook")
        self._response = response
        self._chunks = response.iter_raw()
        validator = response.headers.get("etag") or response.headers.get("last-modified")
        changed = self.validator is not None and validator not in (None, self.validator)
        if response.status_code == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
            size = None if match is None or match[3] == "*" else int(match[3])
            same_size = self.total is None or size == self.total
            if match is None or int(match[1]) != self.offset or not same_size or changed:
                self._changed(response, reason)
            return
        length = response.headers.get("content-length")
        if changed or (self.total is not None and length != str(self.total)):
            self._changed(response, reason)
        remaining = self.offset  # the server ignored Range: read the start again, drop it
        while remaining > 0:
            chunk = next(self._chunks, b"")
            if not chunk:
                self._changed(response, reason)
            if len(chunk) > remaining:
                self._take(chunk[remaining:])
            remaining -= min(remaining, len(chunk))

    def _changed(self, response: httpx.Response, reason: str) -> None:
        response.close()
        raise DownloadError(
            f"Expected {self.url} to stay the same while it downloaded. Received: a different"
            f" file after the connection broke ({reason}). Run the command again.",
            url=self.url,
            status=response.status_code,
            handle=self.handle,
        )

    def _take(self, chunk: bytes) -> None:
        """Hand a chunk to the reader (blocks while the reader is far behind)."""
        self.offset += len(chunk)
        if self._bar is not None:
            self._bar.update(len(chunk))
        while not self._stop.is_set():
            try:
                self._queue.put(chunk, timeout=0.1)
                return
            except queue.Full:
                continue

    def _produce(self) -> None:
        """The receiving thread: pull chunks (retrying, resuming) until the end or stop."""
        try:
            while not self._stop.is_set() and self._pull():
                pass
            item: bytes | BaseException | None = None
        except BaseException as error:  # handed to the reader, which raises it
            item = error
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _pull(self) -> bool:
        """Receive the next chunk and hand it over; False at the end of the body."""
        stalls = 0
        offset_at_cut = -1
        while True:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                if self.total is None or self.offset >= self.total:
                    return False
                reason = f"body ended at byte {self.offset} of {self.total}"
            except RETRY_ERRORS as error:
                if self.total is not None and self.offset >= self.total:
                    return False  # every byte arrived; only the goodbye failed
                reason = f"{type(error).__name__} at byte {self.offset}: {error}"
            else:
                self._take(chunk)
                return True
            if self._stop.is_set():  # the reader closed us: no reconnect
                return False
            stalls = stalls + 1 if offset_at_cut == self.offset else 1
            if stalls >= self.retries:
                raise DownloadError(
                    f"Expected the rest of {self.url} after {stalls} reconnects. Received: "
                    f"nothing more ({reason}). Try again later.",
                    url=self.url,
                    handle=self.handle,
                )
            if stalls > 1:
                time.sleep(backoff(stalls - 1, None))
            offset_at_cut = self.offset
            self._resume(reason)

    # file interface ------------------------------------------------------------------

    def read(self, n: int = -1, /) -> bytes:
        """``n`` bytes (all the rest for ``n < 0``); fewer only at the end.

        A background thread receives the body (the network and HTTP parsing then overlap
        with the caller's decompression and writing); errors it meets are raised here.
        """
        if self._chunks is None:
            raise ValueError("RemoteFile.read() before open()")
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._thread = threading.Thread(target=self._produce, name="hublayer-download")
            self._thread.daemon = True
            self._thread.start()
        parts, have = ([self._rest], len(self._rest)) if self._rest else ([], 0)
        self._rest = b""
        while (n < 0 or have < n) and not self._eof:
            item = self._queue.get()
            if item is None:
                self._eof = True
            elif isinstance(item, BaseException):
                self._eof = True
                self._error = item
                raise item
            else:
                parts.append(item)
                have += len(item)
        if 0 <= n < have:  # split the last chunk: one copy of the bytes in all
            last = parts[-1]
            keep = len(last) - (have - n)
            parts[-1], self._rest = last[:keep], last[keep:]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        """Stop the receiving thread, close the connection and the progress bar."""
        self._stop.set()
        if self._thread is not None:
            while True:  # unblock a thread waiting to hand over a chunk
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            self._thread.join(timeout=1.0)
        if self._response is not None:
            self._response.close()  # also ends a receive still blocked on the network
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> RemoteFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def get_json(client: httpx.Client, url: str, *, handle: str | None = None) -> Any:
    """GET ``url`` (with retries) and parse its JSON body."""
    with RemoteFile(client, url, handle=handle, progress=False) as remote:
        remote.open()
        body = remote.read()
    try:
        return json.loads(body)
    except ValueError as error:
        raise DownloadError(
            f"Expected JSON from {url}. Received: {body[:80]!r}. Check the endpoint setting "
            "(HUBLAYER_KAGGLE_ENDPOINT) or try again later.",
            url=url,
            status=200,
            handle=handle,
        ) from error
