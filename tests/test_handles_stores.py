"""Object stores (s3:// against a moto server on loopback, gs://) and hf:// handles."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import hublayer
from hublayer import cache
from hublayer.errors import HandleError, ModelNotFoundError, NotCachedError
from hublayer.testing import FileServer

MODEL = {
    "saved_model.pb": b"graph" * 50,
    "variables/variables.index": b"index",
    "variables/variables.data-00000-of-00001": os.urandom(30_000),
}


def tgz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel, data in files.items():
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def assert_model(path: str | Path) -> None:
    for rel, data in MODEL.items():
        assert (Path(path) / rel).read_bytes() == data


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket holding a model folder, an archive and a .keras file."""
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    name = f"models-{os.urandom(4).hex()}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    for rel, data in MODEL.items():
        s3.put_object(Bucket=name, Key=f"bert/{rel}", Body=data)
    s3.put_object(Bucket=name, Key="archives/bert.tar.gz", Body=tgz(MODEL))
    s3.put_object(Bucket=name, Key="files/model.keras", Body=b"PK-keras-bytes")
    return name


def test_s3_folder_is_copied_into_the_cache_and_verifies(bucket: str) -> None:
    path = hublayer.resolve(f"s3://{bucket}/bert")
    assert_model(path)
    (entry,) = cache.list_entries()
    assert entry.key == f"s3/{bucket}/bert"
    assert [c.ok for c in cache.verify()] == [True]
    assert hublayer.resolve(f"s3://{bucket}/bert", offline=True) == path


def test_s3_archive_is_unpacked(bucket: str) -> None:
    assert_model(hublayer.resolve(f"s3://{bucket}/archives/bert.tar.gz"))


def test_s3_single_file_resolves_to_the_file(bucket: str) -> None:
    path = Path(hublayer.resolve(f"s3://{bucket}/files/model.keras"))
    assert path.name == "model.keras"
    assert path.read_bytes() == b"PK-keras-bytes"


def test_s3_folder_and_an_archive_inside_it_do_not_nest(bucket: str) -> None:
    folder = Path(hublayer.resolve(f"s3://{bucket}/archives"))
    archive = Path(hublayer.resolve(f"s3://{bucket}/archives/bert.tar.gz"))
    assert folder not in archive.parents
    assert len(cache.list_entries()) == 2


def test_s3_missing_object_raises_model_not_found(bucket: str) -> None:
    with pytest.raises(ModelNotFoundError, match="nothing there"):
        hublayer.resolve(f"s3://{bucket}/nope")
    assert cache.list_entries() == []


@pytest.mark.skipif(importlib.util.find_spec("gcsfs") is not None, reason="gcsfs is installed")
def test_gs_without_gcsfs_says_which_extra_to_install() -> None:
    with pytest.raises(HandleError, match=r"pip install 'hublayer\[gcs\]'"):
        hublayer.resolve("gs://bucket/model")


SHA = "0123456789abcdef0123456789abcdef01234567"


def fill_hf_cache(root: Path, repo: str, files: dict[str, bytes]) -> None:
    """Lay out a Hugging Face cache the way huggingface_hub writes it."""
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(SHA)
    for rel, data in files.items():
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = folder / "snapshots" / SHA / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


def test_hf_offline_uses_a_prefilled_hugging_face_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    constants = pytest.importorskip("huggingface_hub.constants")
    fill_hf_cache(tmp_path / "hf", "org/tiny", {f"tf/{k}": v for k, v in MODEL.items()})
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    path = hublayer.resolve("hf://org/tiny/tf", offline=True)
    assert_model(path)
    with pytest.raises(NotCachedError, match="hublayer fetch hf://org/other"):
        hublayer.resolve("hf://org/other", offline=True)


def test_hf_online_downloads_through_hf_endpoint_on_loopback(file_server: FileServer) -> None:
    """A fake Hub (repo info, tree, resolve) on loopback; HF_ENDPOINT is read at import,
    so the resolve runs in a fresh process."""
    pytest.importorskip("huggingface_hub")
    files = {**{f"tf/{k}": v for k, v in MODEL.items()}, "README.md": b"# tiny"}
    file_server.add_json(
        "/api/models/org/tiny/revision/main",
        {"id": "org/tiny", "sha": SHA, "siblings": [{"rfilename": p} for p in files]},
    )
    file_server.add_json(
        f"/api/models/org/tiny/tree/{SHA}",
        [{"type": "file", "path": p, "size": len(d), "oid": "0" * 40} for p, d in files.items()],
    )
    for rel, data in files.items():
        etag = f'"{hashlib.sha1(data).hexdigest()}"'
        file_server.add(
            f"/org/tiny/resolve/{SHA}/{rel}", data, headers={"X-Repo-Commit": SHA, "ETag": etag}
        )
    env = {
        **os.environ,
        "HF_ENDPOINT": file_server.url("/").rstrip("/"),
        "HF_HUB_CACHE": str(Path(os.environ["HUBLAYER_CACHE_DIR"]) / "hf-own-cache"),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    code = "import hublayer; print(hublayer.resolve('hf://org/tiny/tf'))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    assert_model(path)
    assert not (path / "README.md").exists()
    (entry,) = cache.list_entries()
    assert entry.key == "hf/org/tiny/main/tf"
    assert hublayer.resolve("hf://org/tiny/tf", offline=True) == str(path)
