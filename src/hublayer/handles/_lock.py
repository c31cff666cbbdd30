"""A cross-process lock per cache entry, which records its owner and survives dead holders.

The lock is a :class:`filelock.FileLock` (``flock`` on POSIX), so the kernel releases it
the moment its holder dies, even by SIGKILL, and the next process takes it over at once.
Next to the lock file an owner record (``<name>.lock.owner``: pid, host, start time) says
who holds it. A holder removes its record on release, so a record found by a new holder
means the previous one died mid-work: :attr:`EntryLock.took_over` then names it, and the
caller cleans up what it left. A waiter that times out reports the owner, and whether
that process is still alive, in :class:`~hublayer.errors.CacheLockError`.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "entry.lock"
    >>> with EntryLock(path, timeout=1) as lock:
    ...     lock.took_over is None
    True
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import filelock

from hublayer.errors import CacheLockError

__all__ = ["EntryLock", "LockOwner", "pid_alive"]

_POLL_SECONDS = 0.05


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # A killed child that was not reaped yet still answers kill(0).
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


@dataclass(frozen=True)
class LockOwner:
    """Who holds (or held) a lock."""

    pid: int
    host: str
    since: float

    @property
    def alive(self) -> bool | None:
        """True/False for a process on this host; None when it runs on another host."""
        return pid_alive(self.pid) if self.host == socket.gethostname() else None

    def describe(self) -> str:
        """A short human description, for messages."""
        state = {True: "running", False: "no longer running", None: "on another host"}
        age = time.time() - self.since
        return f"pid {self.pid} on {self.host} ({state[self.alive]}, for {age:.0f} s)"


class EntryLock:
    """Exclusive lock on one cache entry, held as a context manager.

    Args:
        path: the lock file; its folder is created if needed.
        timeout: seconds to wait for another process before giving up.

    Raises:
        CacheLockError: another live process held the lock for longer than ``timeout``.
    """

    def __init__(self, path: Path, *, timeout: float) -> None:
        self.path = path
        self.owner_path = path.with_name(path.name + ".owner")
        self.timeout = timeout
        #: The owner record of a previous holder that died while holding the lock.
        self.took_over: LockOwner | None = None
        self._lock = filelock.FileLock(str(path))

    def read_owner(self) -> LockOwner | None:
        """The current owner record, or None when there is none (or it is unreadable)."""
        try:
            data = json.loads(self.owner_path.read_text(encoding="utf-8"))
            return LockOwner(int(data["pid"]), str(data["host"]), float(data["since"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def acquire(self) -> None:
        """Wait for the lock, then record this process as its owner."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=self.timeout, poll_interval=_POLL_SECONDS)
        except filelock.Timeout:
            owner = self.read_owner()
            who = owner.describe() if owner else "an unknown process"
            hint = (
                " That process is gone, so a child it forked still holds the lock: "
                "end that child, or delete the lock file."
                if owner is not None and owner.alive is False
                else " Wait for it to finish, or raise HUBLAYER_LOCK_TIMEOUT."
            )
            raise CacheLockError(
                f"Expected to lock the cache entry within {self.timeout:g} s. "
                f"Received: the lock {self.path} is held by {who}.{hint}",
                path=str(self.path),
                timeout=self.timeout,
                owner=owner,
            ) from None
        self.took_over = self.read_owner()
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        tmp = self.owner_path.with_name(f"{self.owner_path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, self.owner_path)

    def release(self) -> None:
        """Remove the owner record, then release the lock."""
        with contextlib.suppress(FileNotFoundError):
            self.owner_path.unlink()
        self._lock.release()

    def __enter__(self) -> EntryLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
