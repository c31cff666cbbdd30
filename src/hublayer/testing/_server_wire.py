"""The wire side of :class:`~hublayer.testing.FileServer`: how each request is answered.

:class:`Handler` serves a route (bytes, or a function of the :class:`Request`) or a
file under the server's folder, honours ``Range`` / ``If-Range`` / ``HEAD``, and applies
the faults the :class:`FileServer` was told to inject (:class:`Fault`): a status, a
reset or a clean cut after N bytes, a stall, a byte rate. Files go out with
``sendfile``. The control side (adding routes and faults, counting) is in
:mod:`._server`.

Example:
    >>> Response(404).status, Request("GET", "/a", "", {}).path
    (404, '/a')
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import re
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

__all__ = ["Fault", "Handler", "Owner", "Request", "Response", "Server"]

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Request:
    """One request the server received; header names are Title-Cased (``Range``)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]


@dataclass
class Response:
    """What a handler route returns."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: Send no Content-Length and end the body by closing the connection (HTTP/1.0 style),
    #: so a cut cannot be told from the end. Range is not honoured then.
    close_delimited: bool = False


@dataclass
class Fault:
    """A misbehaviour to apply to the next ``times`` matching requests."""

    kind: str  # "status", "drop", "truncate" or "stall"
    times: int
    path: str | None
    status: int = 500
    after: int = 0
    retry_after: float | None = None
    seconds: float = 0.0


class Handler(BaseHTTPRequestHandler):
    """Answers one connection's requests: routes, files, ranges and the faults asked for."""

    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        owner = self.server.owner
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        headers = {name.title(): value for name, value in self.headers.items()}
        request = Request(self.command, path, parts.query, headers)
        owner._record(request)
        fault = owner._take_fault(path, ("status",))
        if fault is not None:
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after else {}
            self._simple(fault.status, b"injected failure\n", headers, head)
            return
        route = owner._routes.get(path)
        if callable(route):
            route = route(request)
        if isinstance(route, Response):
            if route.status != 200:
                self._simple(route.status, route.body, route.headers, head)
                return
            self._body(path, route.body, None, route.headers, head, route.close_delimited)
            return
        file = owner._file(path)
        if file is None:
            self._simple(404, b"not found\n", {}, head)
            return
        self._body(path, None, file, {}, head)

    def _simple(self, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
        self.send_response(status)
        headers = {"Content-Type": "text/plain", **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _body(
        self,
        path: str,
        data: bytes | None,
        file: Path | None,
        extra: dict[str, str],
        head: bool,
        close_delimited: bool = False,
    ) -> None:
        owner = self.server.owner
        extra = dict(extra)
        if file is not None:
            st = file.stat()
            size, etag = st.st_size, f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
            modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        else:
            data = data or b""
            size, etag = len(data), f'"{hashlib.sha1(data).hexdigest()}"'
            modified = None
        start, end, status = 0, size, 200
        match = _RANGE.fullmatch(self.headers.get("Range", "").strip())
        if_range = self.headers.get("If-Range")
        ranged = owner.range_support and not close_delimited
        if ranged and match and (if_range is None or if_range in (etag, modified)):
            start = int(match[1])
            end = min(size, int(match[2]) + 1) if match[2] else size
            if start >= size or start >= end:
                self._simple(416, b"", {"Content-Range": f"bytes */{size}"}, head)
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", extra.pop("Content-Type", "application/octet-stream"))
        if close_delimited:
            self.close_connection = True
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(end - start))
        self.send_header("ETag", etag)
        if modified:
            self.send_header("Last-Modified", modified)
        if ranged:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        if head:
            return
        cut = owner._take_fault(path, ("drop", "truncate"))
        stall = owner._take_fault(path, ("stall",))
        rate = owner._rates.get(path, owner._rates.get(None))
        stop = end if cut is None else min(end, start + cut.after)
        pause = stop if stall is None else min(stop, start + stall.after)
        with open(file, "rb") if file is not None else contextlib.nullcontext() as f:
            self._send(f, data, start, pause, rate)
            if stall is not None and not self.close_connection:
                time.sleep(stall.seconds)
                self._send(f, data, pause, stop, rate)
        if cut is not None and stop < end:
            self.close_connection = True
            if cut.kind == "drop":  # RST instead of FIN
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()

    def _send(
        self, f: BinaryIO | None, data: bytes | None, start: int, stop: int, rate: float | None
    ) -> None:
        try:
            if f is not None and rate is None:
                if stop > start:
                    self.wfile.flush()
                    self.connection.sendfile(f, start, stop - start)
                return
            if f is not None:
                f.seek(start)
            pos = start
            while pos < stop:
                n = min(_CHUNK if rate is None else max(1, int(rate / 20)), stop - pos)
                chunk = f.read(n) if f is not None else (data or b"")[pos : pos + n]
                self.wfile.write(chunk)
                pos += len(chunk)
                if rate is not None:
                    time.sleep(len(chunk) / rate)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class Owner(Protocol):
    """What the handler asks of the server that owns it (:class:`FileServer`)."""

    range_support: bool
    _routes: dict[str, Response | Callable[[Request], Response]]
    _rates: dict[str | None, float]

    def _record(self, request: Request) -> None: ...

    def _take_fault(self, path: str, kinds: tuple[str, ...]) -> Fault | None: ...

    def _file(self, path: str) -> Path | None: ...


class Server(ThreadingHTTPServer):
    """The threaded server; each request is answered by :class:`Handler`."""

    daemon_threads = True
    allow_reuse_address = True
    owner: Owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (killed, timed out) are normal here: stay quiet."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            super().handle_error(request, client_address)
