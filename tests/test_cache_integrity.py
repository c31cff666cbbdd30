"""Cache entries: damage is detected and repaired; list, verify, remove, prune, build."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

import hublayer
from hublayer import cache
from hublayer.errors import CorruptEntryError, HandleError, NotCachedError
from hublayer.testing import FileServer, archive

MODEL = {
    "saved_model.pb": b"graph" * 100,
    "variables/variables.index": b"index",
    "variables/variables.data-00000-of-00001": os.urandom(50_000),
}
DOCS = Path(__file__).resolve().parents[1] / "docs" / "API.md"


@pytest.fixture
def url(file_server: FileServer, tmp_path: Path) -> str:
    src = tmp_path / "src"
    for rel, data in MODEL.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    file_server.add("/m.tar.gz", Path(archive(src, tmp_path / "m.tar.gz")).read_bytes())
    return file_server.url("/m.tar.gz")


def assert_intact(path: str | Path) -> None:
    for rel, data in MODEL.items():
        assert (Path(path) / rel).read_bytes() == data


def damage_delete(path: Path) -> None:
    (path / "variables" / "variables.index").unlink()


def damage_truncate(path: Path) -> None:
    data = path / "variables" / "variables.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])


@pytest.mark.parametrize("damage", [damage_delete, damage_truncate])
def test_damaged_entry_is_detected_and_fetched_again(
    file_server: FileServer, url: str, damage: object
) -> None:
    path = hublayer.resolve(url)
    damage(Path(path))  # type: ignore[operator]
    assert hublayer.resolve(url) == path
    assert_intact(path)
    assert file_server.count("/m.tar.gz") == 2
    assert [c.ok for c in cache.verify()] == [True]


@pytest.mark.parametrize("damage", [damage_delete, damage_truncate])
def test_damaged_entry_offline_names_the_entry_and_the_fix(url: str, damage: object) -> None:
    path = hublayer.resolve(url)
    damage(Path(path))  # type: ignore[operator]
    with pytest.raises(CorruptEntryError, match="to match its manifest") as info:
        hublayer.resolve(url, offline=True)
    message = str(info.value)
    assert f"hublayer fetch {url}" in message
    assert "hublayer cache rm url/" in message
    assert "variables/variables" in message
    assert info.value.path == path
    assert info.value.problems


def test_unreadable_manifest_counts_as_damage(file_server: FileServer, url: str) -> None:
    path = hublayer.resolve(url)
    (manifest,) = Path(os.environ["HUBLAYER_CACHE_DIR"], "manifests").rglob("*.json")
    manifest.write_text("{not json")
    assert hublayer.resolve(url) == path
    assert file_server.count("/m.tar.gz") == 2


@pytest.mark.parametrize("damage", [damage_delete, damage_truncate])
def test_damage_after_many_resolves_is_seen_by_the_same_process(
    file_server: FileServer, url: str, damage: object
) -> None:
    path = hublayer.resolve(url)
    for _ in range(5):  # this process has read the manifest; later calls reuse it
        assert hublayer.resolve(url, offline=True) == path
    damage(Path(path))  # type: ignore[operator]
    with pytest.raises(CorruptEntryError, match="variables/variables"):
        hublayer.resolve(url, offline=True)
    assert hublayer.resolve(url) == path
    assert_intact(path)
    assert file_server.count("/m.tar.gz") == 2


def test_a_replaced_or_removed_manifest_is_read_again_by_the_same_process(url: str) -> None:
    path = hublayer.resolve(url)
    assert hublayer.resolve(url, offline=True) == path
    (marker,) = Path(os.environ["HUBLAYER_CACHE_DIR"], "manifests").rglob("*.json")
    data = json.loads(marker.read_text())
    data["files"] = [[rel, size + 1, digest] for rel, size, digest in data["files"]]
    fresh = marker.with_name("fresh.tmp")
    fresh.write_text(json.dumps(data))
    os.replace(fresh, marker)  # as a commit by another process does
    with pytest.raises(CorruptEntryError, match=r"saved_model\.pb: 500 bytes, expected 501"):
        hublayer.resolve(url, offline=True)
    marker.unlink()
    with pytest.raises(NotCachedError):
        hublayer.resolve(url, offline=True)


def test_verify_rehashes_and_invalidates_a_same_size_change(
    file_server: FileServer, url: str
) -> None:
    path = Path(hublayer.resolve(url))
    target = path / "saved_model.pb"
    target.write_bytes(b"GRAPH" * 100)  # same size: the cheap check cannot see it
    assert hublayer.resolve(url) == str(path)
    (check,) = cache.verify()
    assert not check.ok
    assert check.problems == ("saved_model.pb: content changed (sha256 mismatch)",)
    assert cache.list_entries() == []  # marked incomplete
    assert hublayer.resolve(url) == str(path)
    assert_intact(path)
    assert [c.ok for c in cache.verify()] == [True]


def test_list_entries_shows_size_files_handle_and_times(url: str) -> None:
    before = time.time()
    path = hublayer.resolve(url)
    (entry,) = cache.list_entries()
    assert entry.path == Path(path)
    assert entry.handle == url
    assert entry.size == sum(len(d) for d in MODEL.values())
    assert entry.files == 3
    assert before - 1 <= entry.created <= entry.last_used <= time.time() + 1


def test_last_use_is_refreshed_by_resolve(url: str) -> None:
    hublayer.resolve(url)
    (entry,) = cache.list_entries()
    manifest = Path(os.environ["HUBLAYER_CACHE_DIR"], "manifests", f"{entry.key}.json")
    os.utime(manifest, (1_000_000, 1_000_000))
    assert cache.list_entries()[0].last_used == 1_000_000
    hublayer.resolve(url)
    assert cache.list_entries()[0].last_used > time.time() - 60


def test_remove_by_key_and_by_handle(url: str) -> None:
    hublayer.resolve(url)
    (entry,) = cache.list_entries()
    assert [e.key for e in cache.remove(url)] == [entry.key]
    assert cache.list_entries() == []
    assert not entry.path.exists()
    hublayer.resolve(url)
    assert [e.key for e in cache.remove(entry.key)] == [entry.key]
    with pytest.raises(NotCachedError, match="hublayer cache ls"):
        cache.remove(entry.key)
    with pytest.raises(HandleError, match="at least one"):
        cache.remove()


def test_remove_a_kaggle_handle_without_version_removes_every_version() -> None:
    for version in (1, 2):
        cache.build_entry(f"kaggle/g/m/tf2/v/{version}", lambda d: (d / "a").write_text("a"))
    cache.build_entry("kaggle/g/m/tf2/other/1", lambda d: (d / "a").write_text("a"))
    removed = cache.remove("kaggle://g/m/tf2/v")
    assert [e.key for e in removed] == ["kaggle/g/m/tf2/v/1", "kaggle/g/m/tf2/v/2"]
    assert [e.key for e in cache.list_entries()] == ["kaggle/g/m/tf2/other/1"]


def test_prune_removes_entries_unused_for_long_and_leftovers(url: str) -> None:
    hublayer.resolve(url)
    cache.build_entry("zoo/recent/1", lambda d: (d / "a").write_text("a"))
    root = Path(os.environ["HUBLAYER_CACHE_DIR"])
    old_key = next(e.key for e in cache.list_entries() if e.key.startswith("url/"))
    os.utime(root / "manifests" / f"{old_key}.json", (1_000_000, 1_000_000))
    dead = root / "tmp" / f"0123456789abcdef.999999999.0.{os.uname().nodename}"
    dead.mkdir(parents=True)
    assert [e.key for e in cache.prune(3600, dry_run=True)] == [old_key]
    assert dead.exists()
    assert [e.key for e in cache.prune(3600)] == [old_key]
    assert [e.key for e in cache.list_entries()] == ["zoo/recent/1"]
    assert not dead.exists()


def test_build_entry_is_atomic_and_builds_once() -> None:
    calls: list[Path] = []

    def build(folder: Path) -> None:
        calls.append(folder)
        (folder / "weights.bin").write_bytes(b"w" * 10)

    path = cache.build_entry("zoo/efficientnet-lite0/feature-vector/1", build)
    assert path.parts[-5:] == ("models", "zoo", "efficientnet-lite0", "feature-vector", "1")
    assert cache.build_entry("zoo/efficientnet-lite0/feature-vector/1", build) == path
    assert len(calls) == 1
    assert not calls[0].exists()  # the staging folder was renamed into place
    manifest = json.loads(
        Path(
            os.environ["HUBLAYER_CACHE_DIR"],
            "manifests",
            "zoo/efficientnet-lite0/feature-vector/1.json",
        ).read_text()
    )
    assert manifest["files"] == [["weights.bin", 10, manifest["files"][0][2]]]
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["files"][0][2])


def test_build_entry_that_fails_leaves_nothing() -> None:
    def build(folder: Path) -> None:
        (folder / "half").write_text("x")
        raise RuntimeError("converter crashed")

    with pytest.raises(RuntimeError, match="converter crashed"):
        cache.build_entry("zoo/broken/1", build)
    root = Path(os.environ["HUBLAYER_CACHE_DIR"])
    assert cache.list_entries() == []
    assert not (root / "models" / "zoo" / "broken").exists()
    assert list((root / "tmp").iterdir()) == []


def test_build_entry_repairs_a_damaged_entry() -> None:
    path = cache.build_entry("zoo/x/1", lambda d: (d / "a").write_text("abc"))
    (path / "a").unlink()
    rebuilt = cache.build_entry("zoo/x/1", lambda d: (d / "a").write_text("abc"))
    assert (rebuilt / "a").read_text() == "abc"


@pytest.mark.parametrize("key", ["", "/abs/key", "a/../b", "a//b", ".hidden/x", "sp ace/x"])
def test_build_entry_refuses_bad_keys(key: str) -> None:
    with pytest.raises(HandleError, match="Expected a cache key"):
        cache.build_entry(key, lambda d: None)


def test_build_entry_refuses_keys_that_nest() -> None:
    cache.build_entry("zoo/a", lambda d: (d / "f").write_text("f"))
    with pytest.raises(HandleError, match="do not nest"):
        cache.build_entry("zoo/a/b", lambda d: (d / "f").write_text("f"))
    cache.build_entry("zoo/c/d", lambda d: (d / "f").write_text("f"))
    with pytest.raises(HandleError, match="do not nest"):
        cache.build_entry("zoo/c", lambda d: (d / "f").write_text("f"))


def test_built_kaggle_key_prefills_the_cache_for_that_handle() -> None:
    path = cache.build_entry(
        "kaggle/google/mobilenet-v2/tensorflow2/100-224-feature-vector/5",
        lambda d: (d / "saved_model.pb").write_text("g"),
    )
    handle = "kaggle://google/mobilenet-v2/tensorFlow2/100-224-feature-vector/5"
    assert hublayer.resolve(handle, offline=True) == str(path)


def test_public_cache_api_is_sorted_and_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    body = text.split("## `hublayer.cache`", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^- `([^`]+)`", body, flags=re.MULTILINE)
    assert cache.__all__ == sorted(cache.__all__) == sorted(documented)
