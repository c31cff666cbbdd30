"""Unsafe archives are refused, and nothing is written outside the cache."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import hublayer
from hublayer import cache
from hublayer.errors import UnsafeArchiveError
from hublayer.testing import FileServer

Member = tuple[str, str, bytes | str]  # (kind, name, data or link target)


def make_tar(members: list[Member]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "sym": tarfile.SYMTYPE,
                "hard": tarfile.LNKTYPE,
                "chr": tarfile.CHRTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[kind]
            info.linkname = payload if isinstance(payload, str) else ""
            tar.addfile(info)
    return buf.getvalue()


def make_zip(members: list[Member]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for kind, name, payload in members:
            info = zipfile.ZipInfo(name)
            data = payload if isinstance(payload, bytes) else payload.encode()
            if kind == "sym":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, data)
    return buf.getvalue()


SAFE = ("file", "saved_model.pb", b"graph")


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache inside ``tmp_path/box/cache``; everything else in ``box`` must stay empty."""
    box = tmp_path / "box"
    (box / "cache").mkdir(parents=True)
    monkeypatch.setenv("HUBLAYER_CACHE_DIR", str(box / "cache"))
    return box


def files_outside(box: Path) -> list[str]:
    return sorted(p.name for p in box.iterdir() if p.name != "cache")


def model_files(box: Path) -> list[str]:
    models = box / "cache" / "models"
    return [str(p) for p in models.rglob("*")] if models.exists() else []


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([SAFE, ("file", "../evil", b"x")], "'..' component"),
        ([SAFE, ("file", "variables/../../evil", b"x")], "'..' component"),
        ([SAFE, ("file", "/tmp/hublayer-evil-abs", b"x")], "absolute path"),
        ([SAFE, ("sym", "link", "../../evil")], "points outside"),
        ([SAFE, ("sym", "link", "/etc/passwd")], "absolute path"),
        ([SAFE, ("hard", "link", "../evil")], "hard link"),
        ([SAFE, ("hard", "link", "/etc/passwd")], "hard link"),
        ([SAFE, ("chr", "dev/null", "")], "device file"),
        ([SAFE, ("fifo", "pipe", "")], "special file"),
        # p -> ., then p/s -> ..: inside lexically, outside once p is followed.
        ([SAFE, ("sym", "p", "."), ("sym", "p/s", "..")], "inside a symlink"),
        ([SAFE, ("sym", "d", "."), ("sym", "e", "d/..")], "resolves outside"),
        # A file written through a symlink to a folder.
        ([("sym", "v", "."), ("file", "v/evil", b"x")], "inside a symlink"),
        ([SAFE, ("sym", "saved_model.pb", "x")], "appears twice"),
        ([SAFE, SAFE], "appears twice"),
    ],
)
def test_unsafe_tar_members_are_refused_and_nothing_leaves_the_cache(
    sandbox: Path, members: list[Member], why: str
) -> None:
    archive = sandbox / "cache" / "incoming.tar.gz"  # inside the cache: outside must stay empty
    archive.write_bytes(make_tar(members))
    with pytest.raises(UnsafeArchiveError, match=why) as info:
        hublayer.resolve(str(archive))
    assert isinstance(info.value, ValueError)
    assert info.value.member
    assert files_outside(sandbox) == []
    assert not Path("/tmp/hublayer-evil-abs").exists()
    assert model_files(sandbox) == []
    assert cache.list_entries() == []
    assert not any((sandbox / "cache" / "tmp").iterdir())


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([SAFE, ("file", "../evil", b"x")], "'..' component"),
        ([SAFE, ("file", "/abs-evil", b"x")], "absolute path"),
        ([SAFE, ("sym", "link", "../../evil")], "points outside"),
    ],
)
def test_unsafe_zip_members_are_refused(sandbox: Path, members: list[Member], why: str) -> None:
    archive = sandbox / "cache" / "incoming.zip"
    archive.write_bytes(make_zip(members))
    with pytest.raises(UnsafeArchiveError, match=why):
        hublayer.resolve(str(archive))
    assert files_outside(sandbox) == []
    assert model_files(sandbox) == []


def test_archive_bomb_is_stopped_at_the_size_limit(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBLAYER_MAX_UNPACK_BYTES", "1000000")
    archive = sandbox / "cache" / "bomb.tar.gz"
    archive.write_bytes(make_tar([SAFE, ("file", "zeros", b"\0" * 2_000_000)]))
    assert archive.stat().st_size < 10_000
    with pytest.raises(UnsafeArchiveError, match="at most 1000000 bytes") as info:
        hublayer.resolve(str(archive))
    assert "HUBLAYER_MAX_UNPACK_BYTES" in str(info.value)
    assert model_files(sandbox) == []


def test_zip_bomb_is_refused_from_its_directory_before_writing(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBLAYER_MAX_UNPACK_BYTES", "1000000")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros", b"\0" * 2_000_000)
    (sandbox / "cache" / "bomb.zip").write_bytes(buf.getvalue())
    with pytest.raises(UnsafeArchiveError, match="at most"):
        hublayer.resolve(str(sandbox / "cache" / "bomb.zip"))
    assert model_files(sandbox) == []


def test_unsafe_download_is_refused_too(file_server: FileServer, sandbox: Path) -> None:
    file_server.add("/evil.tar.gz", make_tar([SAFE, ("sym", "x", "../../../etc")]))
    with pytest.raises(UnsafeArchiveError, match="points outside"):
        hublayer.resolve(file_server.url("/evil.tar.gz"))
    assert model_files(sandbox) == []
    assert files_outside(sandbox) == []


def test_links_that_stay_inside_become_copies(sandbox: Path) -> None:
    """A cache entry holds no link: the model scan refuses links anywhere in a model."""
    archive = sandbox / "cache" / "ok.tar.gz"
    archive.write_bytes(
        make_tar(
            [
                ("dir", "./", ""),
                ("file", "./variables/variables.index", b"idx"),
                ("sym", "assets/index", "../variables/variables.index"),
                ("hard", "copy.index", "variables/variables.index"),
                SAFE,
            ]
        )
    )
    path = Path(hublayer.resolve(str(archive)))
    assert (path / "assets" / "index").read_bytes() == b"idx"
    assert not (path / "assets" / "index").is_symlink()
    assert (path / "copy.index").read_bytes() == b"idx"
    assert (path / "copy.index").stat().st_nlink == 1
    assert [c.ok for c in cache.verify()] == [True]


Maker = Callable[[list[Member]], bytes]


@pytest.mark.parametrize(("maker", "suffix"), [(make_tar, ".tar.gz"), (make_zip, ".zip")])
def test_refused_archive_message_says_what_to_do(sandbox: Path, maker: Maker, suffix: str) -> None:
    archive = sandbox / "cache" / f"a{suffix}"
    archive.write_bytes(maker([("file", "../x", b"x")]))
    with pytest.raises(UnsafeArchiveError) as info:
        hublayer.resolve(str(archive))
    message = str(info.value)
    assert "Expected archive members to stay inside their entry" in message
    assert "Received: member '../x'" in message
    assert "Nothing was written outside the cache" in message
    assert info.value.path == str(archive)
