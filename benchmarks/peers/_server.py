"""A loopback HTTP file server in its own process, neutral between the clients it serves.

``python -m benchmarks.peers._server FOLDER`` serves FOLDER on 127.0.0.1 and prints
``port N`` once it listens. The parent side is :class:`LoopbackServer`. Query strings are
ignored, so ``tensorflow_hub``'s ``?tf-hub-format=compressed`` gets the same file.

Example:
    >>> import tempfile, pathlib, urllib.request
    >>> folder = pathlib.Path(tempfile.mkdtemp()); _ = (folder / "a.txt").write_text("hi")
    >>> with LoopbackServer(folder) as server:
    ...     urllib.request.urlopen(server.url("a.txt")).read()
    b'hi'
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from types import TracebackType
from typing import Any

__all__ = ["LoopbackServer", "main"]


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def copyfile(self, source: Any, outputfile: Any) -> None:
        # sendfile: the kernel copies, so the server costs the client as little as possible.
        try:
            self.wfile.flush()
            out, src, offset = self.connection.fileno(), source.fileno(), 0
            while sent := os.sendfile(out, src, offset, 1 << 24):
                offset += sent
        except (AttributeError, OSError):
            super().copyfile(source, outputfile)


def main() -> None:
    """Serve ``sys.argv[1]`` until stdin closes (the parent ended) or the process is killed."""
    folder = sys.argv[1]
    handler = functools.partial(_Handler, directory=folder)
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=_exit_with_parent, daemon=True).start()
        print(f"port {httpd.server_address[1]}", flush=True)
        httpd.serve_forever()


def _exit_with_parent() -> None:
    sys.stdin.read()
    os._exit(0)


class LoopbackServer:
    """Starts the server process for ``folder``; ``url(name)`` gives a file's address.

    Args:
        folder: the folder to serve.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        from benchmarks._subprocess import ROOT, child_env

        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.peers._server", str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=child_env(),
        )
        assert self._proc.stdout is not None  # stdout=PIPE above
        line = self._proc.stdout.readline()
        if not line.startswith("port "):
            self.close()
            raise RuntimeError(f"loopback server did not start: {line!r}")
        self.port = int(line.split()[1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
        self._proc.wait(timeout=10)
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(
        self, exc: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


if __name__ == "__main__":
    main()
