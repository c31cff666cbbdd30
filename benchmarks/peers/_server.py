"""The client side of a loopback HTTP file server in its own process.

The server is :class:`hublayer.testing.FileServer`, run as ``python -m
hublayer.testing._server FOLDER`` (one loopback server in the code base, not two): it
serves FOLDER on 127.0.0.1 with ``sendfile``, in a process of its own so no contender
shares a GIL with it, and ignores query strings, so ``tensorflow_hub``'s
``?tf-hub-format=compressed`` gets the same file.

Example:
    >>> import tempfile, pathlib, urllib.request
    >>> folder = pathlib.Path(tempfile.mkdtemp()); _ = (folder / "a.txt").write_text("hi")
    >>> with LoopbackServer(folder) as server:
    ...     urllib.request.urlopen(server.url("a.txt")).read()
    b'hi'
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import TracebackType

__all__ = ["LoopbackServer"]


class LoopbackServer:
    """Starts the server process for ``folder``; ``url(name)`` gives a file's address.

    Args:
        folder: the folder to serve.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        from benchmarks._subprocess import ROOT, child_env

        self._proc = subprocess.Popen(
            [sys.executable, "-m", "hublayer.testing._server", str(folder)],
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
