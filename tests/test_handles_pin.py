"""Pinned handles, content digests and the lock file, against a server that swaps a model."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest

import hublayer
from hublayer import cache
from hublayer.cli import main
from hublayer.errors import HandleError, IntegrityError, LockFileError
from hublayer.handles import content_digest, read_lock_file, split_pin, write_lock_file
from hublayer.testing import FileServer, archive

PATH = "/models/m.tar.gz"
#: Two look-alikes: the same files and sizes, other weights.
ORIGINAL = {
    "saved_model.pb": b"graph" * 100,
    "variables/variables.data-00000-of-00001": bytes(range(256)) * 8,
    "variables/variables.index": b"index",
    "assets/vocab.txt": b"a\nb\n",
}
SWAPPED = {**ORIGINAL, "variables/variables.data-00000-of-00001": bytes(range(255, -1, -1)) * 8}
ZERO = "sha256:" + "0" * 64


def write_model(folder: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def write_zip(folder: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as z:
        for path in sorted(folder.rglob("*"), reverse=True):  # another member order
            if path.is_file():
                z.write(path, path.relative_to(folder).as_posix())
    return dest


class Swapper:
    """Serves the original model at PATH, and swaps in the look-alike on cue."""

    def __init__(self, server: FileServer, tmp: Path) -> None:
        self.server = server
        self.archives = {}
        for name, files in (("original", ORIGINAL), ("swapped", SWAPPED)):
            folder = write_model(tmp / name, files)
            self.archives[name] = Path(archive(folder, tmp / f"{name}.tar.gz"))
        self.url = server.url(PATH)
        self.serve("original")

    def serve(self, name: str) -> None:
        assert self.server.root is not None
        target = self.server.root / PATH.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.archives[name].read_bytes())


@pytest.fixture
def swap(file_server: FileServer, tmp_path: Path) -> Swapper:
    return Swapper(file_server, tmp_path)


@pytest.fixture
def digests(tmp_path: Path) -> dict[str, str]:
    return {
        "original": content_digest(write_model(tmp_path / "d-original", ORIGINAL)),
        "swapped": content_digest(write_model(tmp_path / "d-swapped", SWAPPED)),
    }


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = int(main(list(argv)) or 0)
    out, err = capsys.readouterr()
    return code, out, err


def no_entry_holds(digest: str) -> bool:
    return all(c.digest != digest for c in cache.verify())


# ---------------------------------------------------------------- the digest


def test_the_digest_is_the_documented_listing(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", {"b.txt": b"bb", "a/x.bin": b"x"})
    lines = b"".join(
        b"%s\0%d\0%s\n" % (rel.encode(), len(data), hashlib.sha256(data).hexdigest().encode())
        for rel, data in sorted({"b.txt": b"bb", "a/x.bin": b"x"}.items())
    )
    assert content_digest(folder) == "sha256:" + hashlib.sha256(lines).hexdigest()
    (folder / "empty").mkdir()  # folders do not count
    assert content_digest(folder) == "sha256:" + hashlib.sha256(lines).hexdigest()
    (folder / "b.txt").write_bytes(b"bc")  # same size, other bytes
    assert content_digest(folder) != "sha256:" + hashlib.sha256(lines).hexdigest()


def test_a_folder_its_tar_gz_and_its_zip_have_one_digest(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", ORIGINAL)
    tgz = archive(folder, tmp_path / "m.tar.gz")
    dot = archive(folder, tmp_path / "m-dot.tgz", dot_prefix=True)
    zipped = write_zip(folder, tmp_path / "m.zip")
    pins = {split_pin(hublayer.pin(str(h)))[1] for h in (folder, tgz, dot, zipped)}
    assert pins == {content_digest(folder)}
    # and each pinned form resolves, the archives through the cache
    for handle in (folder, tgz, zipped):
        path = hublayer.resolve(f"{handle}@{content_digest(folder)}")
        assert (Path(path) / "saved_model.pb").read_bytes() == ORIGINAL["saved_model.pb"]


def test_the_same_model_over_http_has_the_same_digest(swap: Swapper, digests: dict) -> None:
    pinned = hublayer.pin(swap.url)
    assert pinned == f"{swap.url}@{digests['original']}"
    entry = next(e for e in cache.list_entries())
    manifest = json.loads(next(Path(os.environ["HUBLAYER_CACHE_DIR"]).rglob("*.json")).read_text())
    assert manifest["digest"] == digests["original"]
    assert [c.digest for c in cache.verify()] == [digests["original"]]
    assert entry.handle == swap.url


# ---------------------------------------------------------------- parsing a pin


@pytest.mark.parametrize(
    ("handle", "bare"),
    [
        ("kaggle://google/bert/tensorFlow2/en/3@sha256:" + "Ab" * 32, "kaggle://google/bert/tensorFlow2/en/3"),
        ("https://h.example/m.tar.gz?x=1@sha256:" + "0" * 64, "https://h.example/m.tar.gz?x=1"),
        ("/data/model@sha256:" + "0" * 64, "/data/model"),
    ],
)  # fmt: skip
def test_a_pin_is_split_off_and_lower_cased(handle: str, bare: str) -> None:
    assert split_pin(handle) == (bare, "sha256:" + handle.rsplit(":", 1)[1].lower())


@pytest.mark.parametrize(
    "handle",
    [
        "hf://google/bert@main/tf_model",
        "hf://google/bert@v1",
        "https://user:secret@host.example:8080",
        "https://user:secret@host.example/m.tar.gz",
        "/home/me@example/model",
    ],
)
def test_an_at_sign_that_is_no_pin_stays_in_the_handle(handle: str) -> None:
    assert split_pin(handle) == (handle, None)


@pytest.mark.parametrize(
    ("suffix", "says"),
    [
        ("@sha256:" + "0" * 63, "63 hex digits, not 64"),
        ("@sha256:" + "0" * 65, "65 hex digits, not 64"),
        ("@sha256:", "0 hex digits"),
        ("@sha256:" + "g" * 64, "not hex digits"),
        ("@sha256:" + "0" * 62 + " z", "not hex digits"),
        ("@md5:" + "0" * 32, "uses 'md5'"),
        ("@SHA1:" + "0" * 40, "uses 'SHA1'"),
    ],
)
def test_a_malformed_pin_is_a_handle_error(tmp_path: Path, suffix: str, says: str) -> None:
    with pytest.raises(HandleError, match=says) as caught:
        hublayer.resolve(f"{tmp_path}{suffix}")
    assert "HANDLE@sha256:<64 hex digits>" in str(caught.value)
    assert not isinstance(caught.value, IntegrityError)
    with pytest.raises(HandleError):
        hublayer.load(f"{tmp_path}{suffix}")


def test_a_pin_with_no_handle_is_a_handle_error() -> None:
    with pytest.raises(HandleError, match="no handle before"):
        hublayer.resolve("@sha256:" + "0" * 64)


# ---------------------------------------------------------------- the swapped archive


def test_pinned_resolve_refuses_the_swapped_archive_and_keeps_nothing(
    swap: Swapper, digests: dict
) -> None:
    pinned = hublayer.pin(swap.url, cache_dir=os.environ["HUBLAYER_CACHE_DIR"] + "-first")
    swap.serve("swapped")
    with pytest.raises(IntegrityError) as caught:
        hublayer.resolve(pinned)
    error = caught.value
    assert (error.expected, error.received) == (digests["original"], digests["swapped"])
    assert digests["original"] in str(error)
    assert digests["swapped"] in str(error)
    assert "pinned in the handle" in str(error)
    assert cache.list_entries() == []  # no complete entry, no staging left
    assert not any((Path(os.environ["HUBLAYER_CACHE_DIR"]) / "tmp").iterdir())
    # the unpinned handle takes the new content
    path = hublayer.resolve(swap.url)
    assert (Path(path) / "variables/variables.data-00000-of-00001").read_bytes() == SWAPPED[
        "variables/variables.data-00000-of-00001"
    ]
    # the pinned one still refuses it: offline from the record, online after a new download
    with pytest.raises(IntegrityError, match="the cached copy"):
        hublayer.resolve(pinned, offline=True)
    count = swap.server.count(PATH)
    with pytest.raises(IntegrityError, match="not kept"):
        hublayer.resolve(pinned)
    assert swap.server.count(PATH) == count + 1
    assert hublayer.resolve(swap.url) == path  # the unpinned entry is untouched
    # once the server serves the pinned content again, the pin repairs the entry
    swap.serve("original")
    assert hublayer.resolve(pinned) == path
    assert (Path(path) / "variables/variables.data-00000-of-00001").read_bytes() == ORIGINAL[
        "variables/variables.data-00000-of-00001"
    ]
    assert hublayer.resolve(pinned, offline=True) == path


def test_a_pinned_cached_resolve_compares_the_record_and_verify_rehashes(
    swap: Swapper, digests: dict
) -> None:
    pinned = hublayer.pin(swap.url)
    path = Path(hublayer.resolve(pinned))
    data = path / "variables/variables.data-00000-of-00001"
    data.write_bytes(SWAPPED["variables/variables.data-00000-of-00001"])  # same size
    # no re-hash on the fast path: the recorded digest is what it compares
    assert hublayer.resolve(pinned, offline=True) == str(path)
    (check,) = cache.verify()
    assert not check.ok
    assert "sha256 mismatch" in check.problems[0]
    # verify marked it incomplete: the pinned resolve fetches and checks it again
    assert hublayer.resolve(pinned) == str(path)
    assert data.read_bytes() == ORIGINAL["variables/variables.data-00000-of-00001"]


def test_a_manifest_whose_record_disagrees_with_its_files_fails_verify(swap: Swapper) -> None:
    hublayer.resolve(swap.url)
    (marker,) = Path(os.environ["HUBLAYER_CACHE_DIR"], "manifests").rglob("*.json")
    data = json.loads(marker.read_text())
    data["digest"] = ZERO
    marker.write_text(json.dumps(data))
    with pytest.raises(IntegrityError):  # the file list decides, not the edited record
        hublayer.resolve(f"{swap.url}@{ZERO}", offline=True)
    (check,) = cache.verify()
    assert any("records the digest" in p for p in check.problems)


# ---------------------------------------------------------------- the lock file


def test_the_lock_file_refuses_the_swapped_archive(
    swap: Swapper, digests: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    entries = write_lock_file(swap.url)  # ./hublayer.lock
    assert entries == {swap.url: digests["original"]}
    text = (tmp_path / "hublayer.lock").read_text()
    assert "version = 1" in text
    assert f'"{swap.url}" = "{digests["original"]}"' in text
    cache.remove(swap.url)
    swap.serve("swapped")
    with pytest.raises(IntegrityError, match="lock file") as caught:
        hublayer.resolve(swap.url)
    assert caught.value.received == digests["swapped"]
    assert cache.list_entries() == []
    # the explicit pin wins over the lock file
    assert hublayer.resolve(f"{swap.url}@{digests['swapped']}")
    # --update re-pins deliberately; then the lock file takes the new content
    assert write_lock_file(update=True) == {swap.url: digests["swapped"]}
    assert hublayer.resolve(swap.url)
    # HUBLAYER_LOCKFILE names another file, which wins over ./hublayer.lock
    other = tmp_path / "elsewhere" / "pins.lock"
    write_lock_file(swap.url, path=other, update=True)
    monkeypatch.setenv("HUBLAYER_LOCKFILE", str(other))
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert read_lock_file() == {swap.url: digests["swapped"]}


def test_write_lock_file_checks_listed_handles_and_writes_nothing_on_failure(
    swap: Swapper, digests: dict, tmp_path: Path
) -> None:
    lock = tmp_path / "hublayer.lock"
    write_lock_file(swap.url, path=lock)
    before = lock.read_bytes()
    swap.serve("swapped")
    cache.remove(swap.url)
    with pytest.raises(IntegrityError):
        write_lock_file(swap.url, str(tmp_path), path=lock)
    assert lock.read_bytes() == before


def test_strict_mode_refuses_an_unlisted_handle(
    swap: Swapper, digests: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUBLAYER_LOCKED", "1")
    with pytest.raises(LockFileError, match="no lock file is in force"):
        hublayer.resolve(swap.url)
    assert hublayer.resolve(f"{swap.url}@{digests['original']}")  # a pin is enough
    folder = write_model(tmp_path / "local", ORIGINAL)
    write_lock_file(swap.url, path=tmp_path / "hublayer.lock")
    assert hublayer.resolve(swap.url)
    with pytest.raises(LockFileError, match="does not list it"):
        hublayer.resolve(str(folder))
    with pytest.raises(LockFileError, match="does not list it"):
        hublayer.load(str(folder))  # the local-folder shortcut does not skip the check
    monkeypatch.delenv("HUBLAYER_LOCKED")
    assert hublayer.resolve(str(folder)) == str(folder)  # a handle it lacks is allowed


def test_a_listed_local_folder_is_checked_through_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_model(tmp_path / "local", ORIGINAL)
    monkeypatch.chdir(tmp_path)
    write_lock_file("./local")
    assert read_lock_file() == {str(folder): content_digest(folder)}
    (folder / "saved_model.pb").write_bytes(b"x")
    with pytest.raises(IntegrityError):
        hublayer.load(str(folder))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("version = 1\n[models\n", "not valid TOML or JSON"),
        ('{"version": 1, "models": {', "not valid TOML or JSON"),
        ("version = 2\n[models]\n", "version=2"),
        ('{"version": "1", "models": {}}', "version='1'"),
        ("[models]\n", "version=None"),
        ('version = 1\nmodel = {}\n', "unknown fields"),
        ('version = 1\n[models]\n"kaggle://o/m/tf2/v/1" = "sha256:abc"\n', "64"),
        ('version = 1\n[models]\n"kaggle://o/m/tf2/v/1" = "md5:' + "0" * 32 + '"\n', "md5"),
        ('version = 1\n[models]\n"kaggle://o/m/tf2/v/1" = 3\n', "not a string"),
        (f'version = 1\n[models]\n"kaggle://o/m/tf2/v/1@{ZERO}" = "{ZERO}"\n', "its own pin"),
        (f'version = 1\n[models]\n"kaggle://o/m/tf2/v/1" = "{ZERO}"\n'
         f'"kaggle://o/m/tf2/v/1" = "{ZERO}"\n', "not valid TOML"),
        (f'version = 1\n[models]\n"kaggle://o/m/tf2/v/1" = "{ZERO}"\n'
         f'"https://www.kaggle.com/models/o/m/tf2/v/1" = "{ZERO}"\n', "two entries for one"),
        (f'{{"version": 1, "models": {{"kaggle://o/m/tf2/v/1": "{ZERO}", '
         f'"kaggle://o/m/tf2/v/1": "{ZERO}"}}}}', "appears twice"),
    ],
)  # fmt: skip
def test_a_bad_lock_file_is_a_lock_file_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hublayer.lock").write_text(text)
    folder = write_model(tmp_path / "m", ORIGINAL)
    with pytest.raises(LockFileError, match=says) as caught:
        hublayer.resolve(str(folder))
    assert isinstance(caught.value, HandleError)
    assert caught.value.path == "hublayer.lock"


def test_a_named_lock_file_that_is_missing_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBLAYER_LOCKFILE", str(tmp_path / "missing.lock"))
    with pytest.raises(LockFileError, match="FileNotFoundError"):
        hublayer.resolve(str(tmp_path))


def test_a_json_lock_file_works_as_toml_does(tmp_path: Path, digests: dict) -> None:
    folder = write_model(tmp_path / "m", ORIGINAL)
    lock = tmp_path / "pins.json"
    assert write_lock_file(str(folder), path=lock) == {str(folder): digests["original"]}
    assert json.loads(lock.read_text()) == {
        "version": 1,
        "models": {str(folder): digests["original"]},
    }


# ---------------------------------------------------------------- the CLI


def test_cli_pin_lock_and_a_refused_fetch(
    capsys: pytest.CaptureFixture[str],
    swap: Swapper,
    digests: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "pin", swap.url, str(tmp_path / "nothing-here"))
    assert code == 1  # the second handle does not exist, after the first was printed
    assert out.splitlines() == [f"{swap.url}@{digests['original']}"]
    code, out, _ = run(capsys, "lock", swap.url, "--output", "team.lock")
    assert code == 0
    assert digests["original"] in out
    assert read_lock_file(tmp_path / "team.lock") == {swap.url: digests["original"]}
    swap.serve("swapped")
    cache.remove(swap.url)
    code, _, err = run(capsys, "fetch", f"{swap.url}@{digests['original']}")
    assert code == 1
    assert digests["original"] in err
    assert digests["swapped"] in err
    assert "hublayer pin" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "lock", "--output", "team.lock")  # checks every entry
    assert code == 1
    assert digests["swapped"] in err
    assert "--update" in err
    code, out, _ = run(capsys, "lock", "--output", "team.lock", "--update")
    assert code == 0
    assert digests["swapped"] in out
    code, _, err = run(capsys, "fetch", swap.url + "@sha256:123")
    assert code == 1
    assert "3 hex digits, not 64" in err
