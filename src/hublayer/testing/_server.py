"""``FileServer``: a real HTTP server on 127.0.0.1 that serves files and misbehaves on cue.

Tests of downloads need a server that fails the way real ones do. This one runs in a
background thread on port 0, serves a folder and in-memory routes, supports ``Range``
(switchable), ``HEAD``, ``ETag`` / ``If-Range`` and redirects, and can be told to:

- answer the next N requests with 500 / 503 (optionally with ``Retry-After``);
- drop the connection (TCP reset) after N bytes of a body;
- truncate a body after N bytes (a clean close, the full ``Content-Length`` announced);
- send bytes slowly (bytes per second), or stall mid-body for a while;
- redirect, in chains, to other paths or to another host name of the same server
  (``localhost`` instead of ``127.0.0.1``).

It counts requests per path (query excluded) and logs each request's headers. Files
go out with ``sendfile``, so serving costs the client as little as possible.

``python -m hublayer.testing._server FOLDER`` serves FOLDER from a process of its own
(so no client shares its GIL), prints ``port N`` once it listens, and exits when its
stdin closes: the benchmarks' download peers use it that way.

Example:
    >>> from hublayer.testing import FileServer
    >>> import urllib.request
    >>> with FileServer() as server:
    ...     server.add("/hello.txt", b"hi")
    ...     server.fail(times=1, status=503)
    ...     codes = []
    ...     for _ in range(2):
    ...         try:
    ...             codes.append(urllib.request.urlopen(server.url("/hello.txt")).status)
    ...         except Exception as error:  # the injected 503
    ...             codes.append(error.code)
    >>> codes, server.count("/hello.txt")
    ([503, 200], 2)
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import os
import re
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

__all__ = ["FileServer", "Request", "Response", "main"]

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
class _Fault:
    kind: str  # "status", "drop", "truncate" or "stall"
    times: int
    path: str | None
    status: int = 500
    after: int = 0
    retry_after: float | None = None
    seconds: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: FileServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (killed, timed out) are normal here: stay quiet."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class FileServer:
    """A threaded HTTP server on ``127.0.0.1:<free port>``; see the module docstring.

    Args:
        root: a folder to serve (``/a/b.txt`` is ``root/a/b.txt``); None serves only the
            routes added with :meth:`add`.
        range_support: answer ``Range`` requests with 206 (switch it any time).

    Example:
        >>> with FileServer() as server:
        ...     server.add("/m.tar.gz", b"...")
        ...     server.redirect("/tfhub/m", "/kaggle/m")
        ...     server.redirect("/kaggle/m", "/m.tar.gz", host="localhost")
        ...     server.url("/tfhub/m").startswith("http://127.0.0.1:")
        True
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, range_support: bool = True):
        self.root = Path(root).resolve() if root is not None else None
        self.range_support = range_support
        self.requests: Counter[str] = Counter()
        self.log: list[Request] = []
        self._routes: dict[str, Response | Callable[[Request], Response]] = {}
        self._faults: list[_Fault] = []
        self._rates: dict[str | None, float] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------

    def start(self) -> FileServer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        if self._server is None:
            self._server = _Server(("127.0.0.1", 0), _Handler)
            self._server.owner = self
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name="hublayer-file-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise RuntimeError("FileServer is not running; call start() or use `with`.")
        return int(self._server.server_address[1])

    def url(self, path: str = "/", *, host: str = "127.0.0.1") -> str:
        """The URL of ``path``; ``host="localhost"`` looks like another host, same server."""
        return f"http://{host}:{self.port}/{path.lstrip('/')}"

    # content -------------------------------------------------------------------------

    def add(
        self,
        path: str,
        body: bytes | str | Callable[[Request], Response] = b"",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        close_delimited: bool = False,
    ) -> None:
        """Serve ``body`` at ``path`` (a callable gets the :class:`Request` and answers).

        ``close_delimited=True`` sends no ``Content-Length``: the body ends when the
        connection closes, so a truncated body looks complete to the client.
        """
        if callable(body):
            self._routes[path] = body
        else:
            data = body.encode() if isinstance(body, str) else bytes(body)
            self._routes[path] = Response(status, data, dict(headers or {}), close_delimited)

    def add_json(self, path: str, value: Any) -> None:
        """Serve ``value`` as JSON at ``path``."""
        self.add(path, json.dumps(value), headers={"Content-Type": "application/json"})

    def redirect(self, path: str, to: str, *, status: int = 302, host: str | None = None) -> None:
        """Redirect ``path`` to ``to``: a path on this server (under ``host``) or a URL."""

        def answer(request: Request) -> Response:
            target = to if "://" in to else self.url(to, host=host or "127.0.0.1")
            if request.query and "?" not in target:
                target += "?" + request.query
            return Response(status, b"", {"Location": target})

        self._routes[path] = answer

    # misbehaviour --------------------------------------------------------------------

    def fail(
        self,
        times: int = 1,
        *,
        status: int = 500,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``times`` requests (to ``path``, or any) with ``status``."""
        with self._lock:
            self._faults.append(_Fault("status", times, path, status, retry_after=retry_after))

    def drop(self, after: int, *, times: int = 1, path: str | None = None) -> None:
        """Reset the connection after ``after`` body bytes, for the next ``times`` bodies."""
        with self._lock:
            self._faults.append(_Fault("drop", times, path, after=after))

    def truncate(self, after: int, *, times: int = 1, path: str | None = None) -> None:
        """Close cleanly after ``after`` body bytes (full length announced), ``times`` times."""
        with self._lock:
            self._faults.append(_Fault("truncate", times, path, after=after))

    def stall(
        self, seconds: float, *, after: int = 0, times: int = 1, path: str | None = None
    ) -> None:
        """Pause ``seconds`` after ``after`` body bytes (a hung connection), ``times`` times."""
        with self._lock:
            self._faults.append(_Fault("stall", times, path, after=after, seconds=seconds))

    def slow(self, bytes_per_second: float | None, *, path: str | None = None) -> None:
        """Send bodies (of ``path``, or all) at this rate; None removes the limit."""
        with self._lock:
            if bytes_per_second is None:
                self._rates.pop(path, None)
            else:
                self._rates[path] = float(bytes_per_second)

    def reset(self) -> None:
        """Forget pending faults, rates and counts (routes stay)."""
        with self._lock:
            self._faults.clear()
            self._rates.clear()
            self.requests.clear()
            self.log.clear()

    # observation ---------------------------------------------------------------------

    def count(self, path: str) -> int:
        """How many requests (GET and HEAD) ``path`` received."""
        with self._lock:
            return self.requests[path]

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests[request.path] += 1
            self.log.append(request)

    def _take_fault(self, path: str, kinds: tuple[str, ...]) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.path in (None, path) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _file(self, path: str) -> Path | None:
        if self.root is None:
            return None
        candidate = (self.root / path.lstrip("/")).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            return None
        return candidate if candidate.is_file() else None


def main(argv: list[str] | None = None) -> None:
    """Serve a folder until stdin closes (the parent ended) or the process is killed.

    Args:
        argv: ``[FOLDER]``; default ``sys.argv[1:]``.
    """
    (folder,) = sys.argv[1:] if argv is None else argv
    with FileServer(folder) as server:
        print(f"port {server.port}", flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
