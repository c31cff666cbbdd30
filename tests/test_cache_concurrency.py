"""Many processes, one download; crashes mid-download; locks held by others."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hublayer
from hublayer import cache
from hublayer.errors import CacheLockError
from hublayer.testing import FileServer, archive

MODEL = {
    "saved_model.pb": os.urandom(20_000),
    "variables/variables.data-00000-of-00001": os.urandom(400_000),
}
PATH = "/m.tar.gz"
RESOLVE = "import sys, hublayer; print(hublayer.resolve(sys.argv[1]), flush=True)"


@pytest.fixture
def url(file_server: FileServer, tmp_path: Path) -> str:
    src = tmp_path / "src"
    for rel, data in MODEL.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    assert file_server.root is not None
    archive(src, file_server.root / "m.tar.gz")
    return file_server.url(PATH)


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def assert_intact(path: str | Path) -> None:
    for rel, data in MODEL.items():
        assert (Path(path) / rel).read_bytes() == data


def test_eight_processes_cause_exactly_one_archive_request(
    file_server: FileServer, url: str
) -> None:
    file_server.slow(400_000, path=PATH)  # ~1 s of body, so the processes overlap
    procs = [spawn(RESOLVE, url) for _ in range(8)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in results]
    paths = {out.strip() for out, _ in results}
    assert len(paths) == 1
    assert file_server.count(PATH) == 1
    assert_intact(paths.pop())
    assert [c.ok for c in cache.verify()] == [True]


def test_sigkill_during_download_then_a_new_resolve_succeeds_and_verifies(
    file_server: FileServer, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    file_server.slow(100_000, path=PATH)  # ~4 s of body
    victim = spawn(RESOLVE, url)
    root = Path(os.environ["HUBLAYER_CACHE_DIR"])
    deadline = time.monotonic() + 60
    while not (root / "tmp").is_dir() or not any((root / "tmp").iterdir()):
        assert time.monotonic() < deadline, "the child never started unpacking"
        time.sleep(0.05)
    time.sleep(0.3)  # part of the body is unpacked into the victim's staging folder
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert cache.list_entries() == []

    file_server.slow(None, path=PATH)
    with caplog.at_level(logging.WARNING, logger="hublayer.handles"):
        path = hublayer.resolve(url)
    assert_intact(path)
    assert [c.ok for c in cache.verify()] == [True]
    assert f"from pid {victim.pid}" in caplog.text  # the dead holder's lock was taken over
    assert list((root / "tmp").iterdir()) == []  # its leftovers were cleaned


HOLD = """
import sys, time
from pathlib import Path
from hublayer.handles._cache import Cache
lock = Cache(Path(sys.argv[1])).lock(sys.argv[2])
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_live_holder_makes_others_wait_then_time_out_with_its_pid(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hublayer.handles import parse_handle

    root = os.environ["HUBLAYER_CACHE_DIR"]
    holder = spawn(HOLD, root, parse_handle(url).key)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("HUBLAYER_LOCK_TIMEOUT", "0.3")
        expected = rf"held by pid {holder.pid} on .*\(running"
        with pytest.raises(CacheLockError, match=expected) as info:
            hublayer.resolve(url)
        assert isinstance(info.value, TimeoutError)
        assert "HUBLAYER_LOCK_TIMEOUT" in str(info.value)
    finally:
        holder.kill()
        holder.wait()
    assert_intact(hublayer.resolve(url))  # the kernel freed the dead holder's lock at once
