"""``hublayer.resolve`` for every handle form served over loopback, online and offline."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import hublayer
from hublayer import cache
from hublayer.errors import DownloadError, ModelNotFoundError, NotCachedError
from hublayer.testing import FileServer, archive

MODEL = {
    "saved_model.pb": b"\x08\x01model-graph",
    "variables/variables.index": b"index" * 10,
    "variables/variables.data-00000-of-00001": os.urandom(200_000),
}
TFHUB_PATH = "google/imagenet/mobilenet_v2_100_224/feature_vector/5"
KAGGLE_LONG = (
    "/kaggle/models/google/mobilenet-v2/frameworks/TensorFlow2/variations/"
    "100-224-feature-vector/versions/5"
)
KAGGLE_SHORT = "/kaggle/models/google/mobilenet-v2/tensorFlow2/100-224-feature-vector/5"
STORAGE = "/storage/kaggle-models-data/1234/5/model.tar.gz"
KAGGLE_KEY = "kaggle/google/mobilenet-v2/tensorflow2/100-224-feature-vector/5"


def model_folder(root: Path, files: dict[str, bytes] = MODEL) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def model_tgz(tmp_path: Path, files: dict[str, bytes] = MODEL) -> bytes:
    src = model_folder(tmp_path / "src", files)
    return Path(archive(src, tmp_path / "model.tar.gz")).read_bytes()


def assert_model(path: str | Path, files: dict[str, bytes] = MODEL) -> None:
    for rel, data in files.items():
        assert (Path(path) / rel).read_bytes() == data


@pytest.fixture
def hub(file_server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FileServer:
    """tfhub.dev and Kaggle on loopback, with the real redirect chain:
    tfhub.dev -> kaggle.com (long form) -> storage (another host, signed query)."""
    monkeypatch.setenv("HUBLAYER_TFHUB_ENDPOINT", file_server.url("/tfhub"))
    monkeypatch.setenv("HUBLAYER_KAGGLE_ENDPOINT", file_server.url("/kaggle"))
    file_server.add(STORAGE, model_tgz(tmp_path))
    file_server.redirect(f"/tfhub/{TFHUB_PATH}", KAGGLE_LONG)
    signed = file_server.url(STORAGE, host="localhost") + "?X-Goog-Signature=secret"
    file_server.redirect(KAGGLE_LONG, signed)
    file_server.redirect(KAGGLE_SHORT, signed)
    return file_server


def test_local_folder_and_file_url_are_used_in_place(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m")
    assert hublayer.resolve(str(folder)) == str(folder)
    assert hublayer.resolve(folder.as_uri()) == str(folder)
    assert cache.list_entries() == []


def test_missing_local_path_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="nothing there") as info:
        hublayer.resolve(str(tmp_path / "nope"))
    assert isinstance(info.value, FileNotFoundError)
    assert "kaggle://" in str(info.value)


def test_local_tar_gz_is_unpacked_into_the_cache_once(tmp_path: Path) -> None:
    tgz = tmp_path / "model.tar.gz"
    tgz.write_bytes(model_tgz(tmp_path))
    path = hublayer.resolve(str(tgz))
    assert_model(path)
    assert Path(path).is_relative_to(Path(os.environ["HUBLAYER_CACHE_DIR"]))
    (Path(path) / "marker").write_text("same entry")
    assert hublayer.resolve(str(tgz)) == path
    assert [e.files for e in cache.list_entries()] == [3]


def test_edited_local_archive_is_unpacked_again(tmp_path: Path) -> None:
    tgz = tmp_path / "model.tar.gz"
    tgz.write_bytes(model_tgz(tmp_path))
    first = hublayer.resolve(str(tgz))
    changed = {**MODEL, "saved_model.pb": b"v2"}
    tgz.write_bytes(model_tgz(tmp_path / "v2", changed))
    second = hublayer.resolve(str(tgz))
    assert second != first
    assert_model(second, changed)


def test_local_zip_is_unpacked(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for rel, data in MODEL.items():
            zf.writestr(rel, data)
    path = tmp_path / "model.zip"
    path.write_bytes(buf.getvalue())
    assert_model(hublayer.resolve(str(path)))


def test_corrupt_local_archive_is_refused_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "model.tar.gz"
    bad.write_bytes(b"this is not gzip")
    with pytest.raises(ModelNotFoundError, match="Expected a tar or zip archive"):
        hublayer.resolve(str(bad))
    assert cache.list_entries() == []


def test_http_archive_downloads_once_then_resolves_from_the_cache(
    file_server: FileServer, tmp_path: Path
) -> None:
    file_server.add("/models/m.tar.gz", model_tgz(tmp_path))
    url = file_server.url("/models/m.tar.gz")
    path = hublayer.resolve(url)
    assert_model(path)
    assert hublayer.resolve(url) == path
    assert file_server.count("/models/m.tar.gz") == 1
    assert [c.ok for c in cache.verify()] == [True]


def test_http_handle_asks_for_the_compressed_tfhub_format(
    file_server: FileServer, tmp_path: Path
) -> None:
    file_server.add("/hub/model", model_tgz(tmp_path))
    assert_model(hublayer.resolve(file_server.url("/hub/model")))
    assert [r.query for r in file_server.log] == ["tf-hub-format=compressed"]


def test_tfhub_handle_follows_redirects_and_is_keyed_by_its_kaggle_identity(
    hub: FileServer,
) -> None:
    path = hublayer.resolve(f"https://tfhub.dev/{TFHUB_PATH}")
    assert_model(path)
    assert Path(path).as_posix().endswith("models/" + KAGGLE_KEY)
    (entry,) = cache.list_entries()
    assert entry.key == KAGGLE_KEY
    assert entry.handle == f"https://tfhub.dev/{TFHUB_PATH}"
    assert hub.log[0].query == "tf-hub-format=compressed"


def test_tfhub_and_kaggle_spellings_share_one_entry_and_one_download(hub: FileServer) -> None:
    tfhub = hublayer.resolve(f"https://tfhub.dev/{TFHUB_PATH}")
    for spelling in (
        "kaggle://google/mobilenet-v2/tensorFlow2/100-224-feature-vector/5",
        "https://www.kaggle.com/models/google/mobilenet-v2/tensorFlow2/100-224-feature-vector/5",
        f"https://tfhub.dev/{TFHUB_PATH}",
    ):
        assert hublayer.resolve(spelling) == tfhub
    assert hub.count(STORAGE) == 1
    assert len(cache.list_entries()) == 1


def test_kaggle_first_then_tfhub_reuses_the_entry_without_downloading(hub: FileServer) -> None:
    kaggle = hublayer.resolve("kaggle://google/mobilenet-v2/tensorFlow2/100-224-feature-vector/5")
    assert hub.count(STORAGE) == 1
    tfhub = hublayer.resolve(f"https://tfhub.dev/{TFHUB_PATH}")
    assert tfhub == kaggle
    assert hub.count(STORAGE) == 1  # the redirect named the entry; the body was not read
    hub.reset()
    assert hublayer.resolve(f"https://tfhub.dev/{TFHUB_PATH}", offline=True) == kaggle
    assert hub.log == []


def test_kaggle_without_version_uses_the_newest(hub: FileServer) -> None:
    hub.add_json(
        "/kaggle/api/v1/models/google/mobilenet-v2/tensorFlow2/100-224-feature-vector/get",
        {"versionNumber": 5, "title": "MobileNet V2"},
    )
    path = hublayer.resolve("kaggle://google/mobilenet-v2/tensorFlow2/100-224-feature-vector")
    assert Path(path).name == "5"
    assert_model(path)


def test_kaggle_without_version_offline_uses_the_newest_cached(tmp_path: Path) -> None:
    for version in (1, 3, 2):

        def write(folder: Path, v: int = version) -> None:
            (folder / "v.txt").write_text(str(v))

        cache.build_entry(f"kaggle/google/bert/tensorflow2/en/{version}", write)
    path = hublayer.resolve("kaggle://google/bert/tensorFlow2/en", offline=True)
    assert (Path(path) / "v.txt").read_text() == "3"
    with pytest.raises(NotCachedError, match="hublayer fetch kaggle://google/bert/tf2/other"):
        hublayer.resolve("kaggle://google/bert/tf2/other", offline=True)


def test_offline_resolves_a_cached_entry_without_any_request(
    file_server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_server.add("/m.tar.gz", model_tgz(tmp_path))
    path = hublayer.resolve(file_server.url("/m.tar.gz"))
    file_server.reset()
    monkeypatch.setenv("HUBLAYER_OFFLINE", "1")
    assert hublayer.resolve(file_server.url("/m.tar.gz")) == path
    assert file_server.log == []


def test_offline_missing_entry_fails_at_once_with_not_cached(file_server: FileServer) -> None:
    url = file_server.url("/never.tar.gz")
    with pytest.raises(NotCachedError, match=r"Run `hublayer fetch http://") as info:
        hublayer.resolve(url, offline=True)
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.handle == url
    assert file_server.log == []


def test_force_download_replaces_the_entry(file_server: FileServer, tmp_path: Path) -> None:
    file_server.add("/m.tar.gz", model_tgz(tmp_path))
    url = file_server.url("/m.tar.gz")
    path = hublayer.resolve(url)
    changed = {**MODEL, "saved_model.pb": b"new"}
    file_server.add("/m.tar.gz", model_tgz(tmp_path / "v2", changed))
    assert hublayer.resolve(url, force_download=True) == path
    assert_model(path, changed)
    assert file_server.count("/m.tar.gz") == 2
    with pytest.raises(DownloadError, match="offline mode on"):
        hublayer.resolve(url, force_download=True, offline=True)


def test_not_found_raises_download_error_with_url_and_status(file_server: FileServer) -> None:
    url = file_server.url("/missing.tar.gz")
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        hublayer.resolve(url)
    assert isinstance(info.value, ConnectionError)
    assert (info.value.url, info.value.status) == (url, 404)
    assert cache.list_entries() == []


def test_a_page_that_is_not_an_archive_is_refused(file_server: FileServer) -> None:
    file_server.add("/page", b"<html>Sign in</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(DownloadError, match="text/html") as info:
        hublayer.resolve(file_server.url("/page"))
    assert info.value.status == 200
    assert cache.list_entries() == []


def test_cache_dir_argument_wins_and_tfhub_cache_dir_is_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tgz = tmp_path / "m.tgz"
    tgz.write_bytes(model_tgz(tmp_path))
    explicit = tmp_path / "explicit"
    assert Path(hublayer.resolve(str(tgz), cache_dir=explicit)).is_relative_to(explicit)
    monkeypatch.delenv("HUBLAYER_CACHE_DIR")
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "legacy"))
    assert Path(hublayer.resolve(str(tgz))).is_relative_to(tmp_path / "legacy")


def test_archive_with_a_single_top_level_member_is_kept_as_is(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.keras")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"keras"[:4]))
    (tmp_path / "m.tar.gz").write_bytes(buf.getvalue())
    assert sorted(os.listdir(hublayer.resolve(str(tmp_path / "m.tar.gz")))) == ["model.keras"]


def test_resolving_never_imports_tensorflow(tmp_path: Path) -> None:
    tgz = tmp_path / "m.tar.gz"
    tgz.write_bytes(model_tgz(tmp_path))
    code = (
        "import sys, hublayer, hublayer.cache\n"
        f"hublayer.resolve({str(tgz)!r}); hublayer.cache.verify()\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_threads_of_one_process_download_once(file_server: FileServer, tmp_path: Path) -> None:
    file_server.add("/m.tar.gz", model_tgz(tmp_path))
    file_server.slow(1_000_000, path="/m.tar.gz")
    url = file_server.url("/m.tar.gz")
    with ThreadPoolExecutor(4) as pool:
        paths = set(pool.map(lambda _: hublayer.resolve(url), range(4)))
    assert len(paths) == 1
    assert file_server.count("/m.tar.gz") == 1


def test_a_local_archive_entry_is_removed_by_its_path(tmp_path: Path) -> None:
    tgz = tmp_path / "model.tar.gz"
    tgz.write_bytes(model_tgz(tmp_path))
    hublayer.resolve(str(tgz))
    assert len(cache.remove(str(tgz))) == 1
    assert cache.list_entries() == []


@pytest.mark.parametrize("mode", ["w:bz2", "w:xz", "w"])
def test_every_tar_compression_streams_from_http(
    file_server: FileServer, tmp_path: Path, mode: str
) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        for rel, data in MODEL.items():
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    file_server.add("/m.tar", buf.getvalue())
    assert_model(hublayer.resolve(file_server.url("/m.tar")))
