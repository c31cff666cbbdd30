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

import json
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from hublayer.testing._server_wire import Fault, Handler, Request, Response, Server

__all__ = ["FileServer", "Request", "Response", "main"]


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
        self._faults: list[Fault] = []
        self._rates: dict[str | None, float] = {}
        self._lock = threading.Lock()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------

    def start(self) -> FileServer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        if self._server is None:
            self._server = Server(("127.0.0.1", 0), Handler)
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
            self._faults.append(Fault("status", times, path, status, retry_after=retry_after))

    def drop(self, after: int, *, times: int = 1, path: str | None = None) -> None:
        """Reset the connection after ``after`` body bytes, for the next ``times`` bodies."""
        with self._lock:
            self._faults.append(Fault("drop", times, path, after=after))

    def truncate(self, after: int, *, times: int = 1, path: str | None = None) -> None:
        """Close cleanly after ``after`` body bytes (full length announced), ``times`` times."""
        with self._lock:
            self._faults.append(Fault("truncate", times, path, after=after))

    def stall(
        self, seconds: float, *, after: int = 0, times: int = 1, path: str | None = None
    ) -> None:
        """Pause ``seconds`` after ``after`` body bytes (a hung connection), ``times`` times."""
        with self._lock:
            self._faults.append(Fault("stall", times, path, after=after, seconds=seconds))

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

    def _take_fault(self, path: str, kinds: tuple[str, ...]) -> Fault | None:
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
