"""Downloads against a misbehaving server: retries, Range resume, length and space checks."""

from __future__ import annotations

import os
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

import hublayer
from hublayer import cache
from hublayer.errors import DownloadError, InsufficientSpaceError
from hublayer.testing import FileServer, archive
from hublayer.testing._server import Response

# Incompressible, so the archive is about as big as its content and cuts land mid-file.
MODEL = {
    "saved_model.pb": os.urandom(30_000),
    "variables/variables.data-00000-of-00001": os.urandom(600_000),
    "variables/variables.index": b"index",
}
PATH = "/models/m.tar.gz"


@pytest.fixture
def served(file_server: FileServer, tmp_path: Path) -> str:
    """The model archive as a file on the server; returns its URL."""
    src = tmp_path / "src"
    for rel, data in MODEL.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    assert file_server.root is not None
    archive(src, file_server.root / PATH.lstrip("/"))
    return file_server.url(PATH)


def assert_intact(path: str) -> None:
    for rel, data in MODEL.items():
        assert (Path(path) / rel).read_bytes() == data
    assert [c.ok for c in cache.verify()] == [True]


def ranges(server: FileServer) -> list[str | None]:
    return [r.headers.get("Range") for r in server.log if r.path == PATH]


def test_a_500_then_success_is_retried(file_server: FileServer, served: str) -> None:
    file_server.fail(times=1, status=500)
    assert_intact(hublayer.resolve(served))
    assert file_server.count(PATH) == 2


def test_503_with_retry_after_is_honoured(file_server: FileServer, served: str) -> None:
    file_server.fail(times=2, status=503, retry_after=0.05)
    assert_intact(hublayer.resolve(served))
    assert file_server.count(PATH) == 3


def test_persistent_errors_give_up_with_the_status_and_cache_nothing(
    file_server: FileServer, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBLAYER_DOWNLOAD_RETRIES", "2")
    file_server.fail(times=5, status=500)
    with pytest.raises(DownloadError, match=r"within 2 attempts.*HTTP 500") as info:
        hublayer.resolve(served)
    assert (info.value.url, info.value.status) == (served, 500)
    assert file_server.count(PATH) == 2
    assert cache.list_entries() == []
    assert not any((Path(os.environ["HUBLAYER_CACHE_DIR"]) / "tmp").iterdir())


def test_a_truncated_body_is_resumed_with_range(file_server: FileServer, served: str) -> None:
    file_server.truncate(after=100_000, path=PATH)
    assert_intact(hublayer.resolve(served))
    assert ranges(file_server) == [None, "bytes=100000-"]


def test_a_dropped_connection_mid_file_is_resumed_with_range(
    file_server: FileServer, served: str
) -> None:
    file_server.drop(after=250_000, times=2, path=PATH)
    assert_intact(hublayer.resolve(served))
    got = ranges(file_server)
    assert got[0] is None
    assert len(got) == 3
    assert all(r is not None and r.startswith("bytes=") for r in got[1:])
    assert all(r.headers.get("If-Range") for r in file_server.log[1:])


def test_without_range_support_the_start_is_skipped_on_reconnect(
    file_server: FileServer, served: str
) -> None:
    file_server.range_support = False
    file_server.drop(after=300_000, path=PATH)
    assert_intact(hublayer.resolve(served))
    assert file_server.count(PATH) == 2


def test_a_cut_without_content_length_is_caught_by_the_archive_and_retried(
    file_server: FileServer, served: str
) -> None:
    assert file_server.root is not None
    data = (file_server.root / PATH.lstrip("/")).read_bytes()
    file_server.add("/nolength.tar.gz", data, close_delimited=True)
    file_server.truncate(after=300_000, path="/nolength.tar.gz")
    assert_intact(hublayer.resolve(file_server.url("/nolength.tar.gz")))
    assert file_server.count("/nolength.tar.gz") == 2


def test_a_file_that_changes_during_the_download_is_not_spliced(
    file_server: FileServer, served: str
) -> None:
    assert file_server.root is not None
    bodies = [(file_server.root / PATH.lstrip("/")).read_bytes(), b"x" * 700_000]
    file_server.add("/changing.tar.gz", lambda request: Response(body=bodies.pop(0)))
    file_server.truncate(after=100_000, path="/changing.tar.gz")
    with pytest.raises(DownloadError, match="stay the same"):
        hublayer.resolve(file_server.url("/changing.tar.gz"))
    assert cache.list_entries() == []


def test_content_length_is_enforced_when_the_server_keeps_cutting(
    file_server: FileServer, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBLAYER_DOWNLOAD_RETRIES", "3")
    file_server.range_support = False
    file_server.truncate(after=1000, times=10, path=PATH)
    with pytest.raises(DownloadError, match="after 3 reconnects"):
        hublayer.resolve(served)
    assert cache.list_entries() == []


def test_no_free_space_fails_before_the_body_is_read(
    file_server: FileServer, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file system is the one real thing a test cannot fill safely: fake its answer.
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 100, 100))
    with pytest.raises(InsufficientSpaceError, match="100 bytes free") as info:
        hublayer.resolve(served)
    assert info.value.free == 100
    assert info.value.needed is not None
    assert info.value.needed > 600_000
    assert cache.list_entries() == []


def test_a_stalled_connection_times_out_and_is_resumed(
    file_server: FileServer, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBLAYER_DOWNLOAD_TIMEOUT", "0.3")
    file_server.stall(2.0, after=200_000, path=PATH)
    assert_intact(hublayer.resolve(served))
    assert ranges(file_server) == [None, "bytes=200000-"]
