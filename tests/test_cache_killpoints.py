"""Stress: SIGKILL a process at random points while it downloads, unpacks and commits.

A child resolves the same handle again and again with ``force_download=True``, so at any
moment it is downloading, unpacking, hashing, swapping folders or writing a manifest.
The test kills it at random times. After each kill, every entry that has a manifest must
verify (re-hash), and a fresh resolve must succeed and verify. The number of kill points
is printed; the number of corrupt entries must be zero.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hublayer
from hublayer import cache
from hublayer.handles._cache import Cache
from hublayer.handles._manifest import Manifest, check_hashes
from hublayer.testing import FileServer, archive

KILL_POINTS = 24
LOOP = """
import sys, hublayer
hublayer.resolve(sys.argv[1])  # imports everything; the entry exists from the last round
print("ready", flush=True)
while True:
    hublayer.resolve(sys.argv[1], force_download=True)
"""


def corrupt_entries(root: Path) -> list[str]:
    """Entries whose manifest exists but whose files do not match it (re-hashed)."""
    store = Cache(root)
    bad = []
    for key in store.entry_keys():
        manifest = Manifest.from_json(store.manifest_path(key).read_bytes())
        if check_hashes(store.entry_dir(key), manifest):
            bad.append(key)
    return bad


@pytest.mark.slow
def test_random_sigkills_never_leave_a_corrupt_entry(
    file_server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(1234)
    src = tmp_path / "src"
    (src / "variables").mkdir(parents=True)
    (src / "saved_model.pb").write_bytes(os.urandom(100_000))
    for i in range(12):
        size = rng.randint(200_000, 1_500_000)
        (src / "variables" / f"shard-{i:02d}").write_bytes(os.urandom(size))
    assert file_server.root is not None
    archive(src, file_server.root / "m.tar.gz")
    url = file_server.url("/m.tar.gz")
    root = Path(os.environ["HUBLAYER_CACHE_DIR"])

    # Where the kills landed: mid-fetch (a staging folder was left), between rounds (the
    # last entry complete), or mid-commit (no manifest, no staging folder).
    outcomes = {"mid-fetch": 0, "between rounds": 0, "mid-commit": 0}
    corrupt: list[str] = []
    for _ in range(KILL_POINTS):
        child = subprocess.Popen(
            [sys.executable, "-c", LOOP, url], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)

        staging = [p for p in (root / "tmp").iterdir()] if (root / "tmp").exists() else []
        complete = bool(Cache(root).entry_keys())
        key = "mid-fetch" if staging else "between rounds" if complete else "mid-commit"
        outcomes[key] += 1
        corrupt += corrupt_entries(root)

        path = hublayer.resolve(url)  # takes over the dead child's lock, repairs if needed
        assert [c.ok for c in cache.verify()] == [True]
        assert (Path(path) / "saved_model.pb").stat().st_size == 100_000

    with capsys.disabled():
        print(f"\n{KILL_POINTS} kill points {outcomes}; corrupt entries: {len(corrupt)}")
    assert corrupt == []
    assert outcomes["mid-fetch"] > 0


DIE_AT = """
import os, signal, sys, hublayer
name, nth = sys.argv[2], int(sys.argv[3])
real = getattr(os, name)
calls = 0
def dying(*args, **kwargs):
    global calls
    calls += 1
    if calls == nth:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
setattr(os, name, dying)
hublayer.resolve(sys.argv[1], force_download=True)
print("survived", flush=True)
"""


@pytest.mark.parametrize(
    ("call", "nth"),
    [
        ("open", 3),  # mid-unpack: the third file being created
        ("unlink", 1),  # dropping the old manifest before the swap
        ("rename", 1),  # the old entry moved aside
        ("rename", 2),  # the new entry moved into place, manifest not yet written
        ("replace", 2),  # the manifest being renamed into place
    ],
)
def test_a_kill_at_each_step_of_a_replace_leaves_old_or_nothing(
    file_server: FileServer, tmp_path: Path, call: str, nth: int
) -> None:
    src = tmp_path / "src"
    (src / "variables").mkdir(parents=True)
    for name in ("saved_model.pb", "variables/a", "variables/b", "variables/c"):
        (src / name).write_bytes(os.urandom(50_000))
    assert file_server.root is not None
    archive(src, file_server.root / "m.tar.gz")
    url = file_server.url("/m.tar.gz")
    first = hublayer.resolve(url)  # an old complete entry for the child to replace
    root = Path(os.environ["HUBLAYER_CACHE_DIR"])

    child = subprocess.run(
        [sys.executable, "-c", DIE_AT, url, call, str(nth)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    assert corrupt_entries(root) == []
    assert hublayer.resolve(url) == first  # the old entry, or a fresh one: same path
    assert [c.ok for c in cache.verify()] == [True]
    cache.prune()  # what the dead child left in tmp/
    assert list((root / "tmp").iterdir()) == []
