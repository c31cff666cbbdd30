"""Resolve and load like tensorflow_hub: its environment variables, formats and wording.

The spec is tensorflow_hub's documented behaviour (resolver, compressed and uncompressed
resolvers, ``hub.load``), served over loopback; gs:// itself is out of reach, so reading a
folder in place is checked through a local path and a ``file://`` stand-in.
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path

import pytest

import hublayer
from hublayer import config, testing
from hublayer.errors import (
    DownloadError,
    HandleError,
    HublayerError,
    InvalidModelError,
    ModelNotFoundError,
)
from hublayer.handles import TfhubHandle, parse_handle
from hublayer.testing import FileServer, archive
from hublayer.testing._server import Request, Response

MODEL = {
    "saved_model.pb": b"\x08\x01model-graph",
    "variables/variables.index": b"index" * 10,
}
TFHUB_PATH = "google/imagenet/mobilenet_v2_100_224/feature_vector/5"
GCS = "gs://tfhub-modules/google/imagenet/mobilenet_v2_100_224/feature_vector/5/uncompressed"


def model_tgz(tmp_path: Path) -> bytes:
    src = tmp_path / "src"
    for rel, data in MODEL.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    return Path(archive(src, tmp_path / "model.tar.gz")).read_bytes()


def entries(root: Path) -> list[str]:
    base = root / "manifests"
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*.json"))


# ---------------------------------------------------------------- cache dir, load(0), folders


def test_tfhub_cache_dir_as_file_url_means_that_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "hub cache"
    monkeypatch.delenv("HUBLAYER_CACHE_DIR")
    monkeypatch.setenv("TFHUB_CACHE_DIR", target.as_uri())
    monkeypatch.chdir(tmp_path)
    assert config.cache_dir() == target
    tgz = tmp_path / "m.tgz"
    tgz.write_bytes(model_tgz(tmp_path))
    assert Path(hublayer.resolve(str(tgz))).is_relative_to(target)
    assert not (tmp_path / "file:").exists()
    monkeypatch.setenv("HUBLAYER_CACHE_DIR", "file://otherhost/x")
    with pytest.raises(ValueError, match="file:///<absolute path>"):
        config.cache_dir()


@pytest.mark.parametrize("entry", ["resolve", "load"])
def test_a_non_string_handle_is_a_handle_error_with_tfhub_wording(entry: str) -> None:
    with pytest.raises(HandleError, match="Expected a string, got 0") as info:
        getattr(hublayer, entry)(0)
    assert isinstance(info.value, ValueError)


def test_a_folder_without_saved_model_pb_is_a_value_error(tmp_path: Path) -> None:
    (tmp_path / "empty_model" / "variables").mkdir(parents=True)
    with pytest.raises(InvalidModelError) as info:
        hublayer.load(str(tmp_path / "empty_model"))
    assert isinstance(info.value, ValueError)
    assert not isinstance(info.value, FileNotFoundError)
    assert "contains neither 'saved_model.pb' nor 'saved_model.pbtxt'" in str(info.value)
    assert getattr(info.value, "path") == str(tmp_path / "empty_model")  # noqa: B009


def test_a_missing_path_keeps_file_not_found_with_tfhub_wording(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ModelNotFoundError, match=f"{missing} does not exist.") as info:
        hublayer.load(missing)  # a Path works too
    assert isinstance(info.value, FileNotFoundError)


def test_a_corrupted_archive_says_failed_to_extract(
    tmp_path: Path, file_server: FileServer
) -> None:
    bad = tmp_path / "model.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00 truncated gzip")
    with pytest.raises(ModelNotFoundError, match=f"Failed to extract {bad}"):
        hublayer.resolve(str(bad))
    file_server.add("/m.tar.gz", b"\x1f\x8b\x08\x00 truncated gzip")
    with pytest.raises(DownloadError, match="Failed to extract"):
        hublayer.resolve(file_server.url("/m.tar.gz"))


# ---------------------------------------------------------------- TFHUB_MODEL_LOAD_FORMAT


@pytest.fixture
def tfhub(file_server: FileServer, monkeypatch: pytest.MonkeyPatch) -> FileServer:
    monkeypatch.setenv("HUBLAYER_TFHUB_ENDPOINT", file_server.url("/tfhub"))
    monkeypatch.setenv("HUBLAYER_KAGGLE_ENDPOINT", file_server.url("/kaggle"))
    return file_server


def see_other(location: str, body: str | None = None) -> Response:
    return Response(303, (location if body is None else body).encode(), {"Location": location})


def test_uncompressed_returns_the_gs_folder_without_a_cache_entry(
    tfhub: FileServer, hublayer_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Request] = []

    def answer(request: Request) -> Response:
        seen.append(request)
        return see_other(GCS + "/")

    tfhub.add(f"/tfhub/{TFHUB_PATH}", answer)
    monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", "UNCOMPRESSED")
    assert hublayer.resolve(f"https://tfhub.dev/{TFHUB_PATH}") == GCS
    assert [r.query for r in seen] == ["tf-hub-format=uncompressed"]
    assert not (hublayer_env / "manifests").exists()


def test_uncompressed_follows_plain_redirects_to_the_303(
    tfhub: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    kaggle = "/kaggle/models/google/mobilenet-v2/tensorFlow2/100-224-feature-vector/5"
    tfhub.redirect(f"/tfhub/{TFHUB_PATH}", kaggle)
    tfhub.add(kaggle, lambda request: see_other("", body=GCS))  # body only, as urllib reads it
    monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", "uncompressed")  # any case
    assert hublayer.resolve(f"https://tfhub.dev/{TFHUB_PATH}") == GCS
    kaggle_handle = "kaggle://google/mobilenet-v2/tensorFlow2/100-224-feature-vector/5"
    assert hublayer.resolve(kaggle_handle) == GCS


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (200, b"a model page", "Expected 303 See other HTTP response but received code 200"),
        (404, b"not found", "Expected 303 See other HTTP response but received code 404"),
        (303, b"https-less answer", "Expected server to return a GCS location but received"),
    ],
)
def test_uncompressed_refuses_anything_but_a_303_to_gs_with_a_value_error(
    tfhub: FileServer,
    hublayer_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    body: bytes,
    message: str,
) -> None:
    tfhub.add(f"/tfhub/{TFHUB_PATH}", body, status=status)
    monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", "UNCOMPRESSED")
    with pytest.raises(InvalidModelError, match=message) as info:
        hublayer.resolve(f"https://tfhub.dev/{TFHUB_PATH}")
    assert isinstance(info.value, ValueError)
    assert getattr(info.value, "status") == status  # noqa: B009
    assert "TFHUB_MODEL_LOAD_FORMAT" in str(info.value)  # the fix
    assert not (hublayer_env / "manifests").exists()


@pytest.mark.parametrize("value", ["COMPRESSED", "AUTO", None])
def test_compressed_and_auto_download_the_archive(
    tfhub: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    tfhub.add(f"/tfhub/{TFHUB_PATH}", model_tgz(tmp_path))
    if value is not None:
        monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", value)
    path = Path(hublayer.resolve(f"https://tfhub.dev/{TFHUB_PATH}"))
    assert (path / "saved_model.pb").read_bytes() == MODEL["saved_model.pb"]
    assert [r.query for r in tfhub.log] == ["tf-hub-format=compressed"]


def test_uncompressed_leaves_archives_local_paths_and_offline_alone(
    tfhub: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tfhub.add("/m.tar.gz", model_tgz(tmp_path))
    monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", "UNCOMPRESSED")
    url = tfhub.url("/m.tar.gz")
    cached = hublayer.resolve(url)  # an archive URL has no uncompressed form
    assert hublayer.resolve(url, offline=True) == cached
    assert hublayer.resolve(str(tmp_path)) == str(tmp_path)
    assert hublayer.resolve(url, load_format="COMPRESSED") == cached  # the argument wins


def test_an_unknown_load_format_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", "ZIPPED")
    with pytest.raises(ValueError, match="COMPRESSED, UNCOMPRESSED"):
        hublayer.resolve("https://tfhub.dev/google/nnlm-en-dim128/2")


def test_load_reads_the_named_folder_in_place(
    tfhub: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hublayer.models import _load

    calls: list[str] = []
    monkeypatch.setattr(_load, "load_in_place", lambda location, *a, **k: calls.append(location))
    tfhub.add(f"/tfhub/{TFHUB_PATH}", lambda request: see_other(GCS))
    monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", "UNCOMPRESSED")
    hublayer.load(f"https://tfhub.dev/{TFHUB_PATH}")
    assert calls == [GCS]


@pytest.mark.parametrize("as_url", [False, True])
def test_load_in_place_reads_a_folder_through_tf_io_gfile(tmp_path: Path, as_url: bool) -> None:
    import tensorflow as tf

    from hublayer.models._load import load_in_place

    folder = Path(testing.image_feature_vector(str(tmp_path / "ifv"), dim=4, image_size=8))
    before = sorted(p.name for p in tmp_path.iterdir())
    loaded = load_in_place(folder.as_uri() if as_url else str(folder))
    assert loaded(tf.zeros([2, 8, 8, 3])).shape == (2, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing copied
    (tmp_path / "bare").mkdir()
    with pytest.raises(InvalidModelError, match=r"contains neither 'saved_model\.pb'"):
        load_in_place(str(tmp_path / "bare"))


# ---------------------------------------------------------------- progress, certificates, cn


@pytest.mark.parametrize(
    ("tfhub_value", "ours", "expected"),
    [("1", None, True), ("true", None, True), ("0", None, False), ("1", "0", False)],
)
def test_tfhub_download_progress_is_honoured_beside_hublayer_progress(
    monkeypatch: pytest.MonkeyPatch, tfhub_value: str, ours: str | None, expected: bool
) -> None:
    monkeypatch.delenv("HUBLAYER_PROGRESS")
    monkeypatch.setenv("TFHUB_DOWNLOAD_PROGRESS", tfhub_value)
    if ours is not None:
        monkeypatch.setenv("HUBLAYER_PROGRESS", ours)
    assert config.progress() is expected


def test_tfhub_download_progress_draws_a_bar(
    file_server: FileServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("HUBLAYER_PROGRESS")
    monkeypatch.setenv("TFHUB_DOWNLOAD_PROGRESS", "1")
    file_server.add("/bar.tar.gz", model_tgz(tmp_path))
    hublayer.resolve(file_server.url("/bar.tar.gz"))
    assert "bar.tar.gz" in capsys.readouterr().err


def test_disabled_cert_validation_warns_each_time(
    file_server: FileServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from hublayer.handles._http import new_client

    monkeypatch.setenv("TFHUB_DISABLE_CERT_VALIDATION", "true")
    file_server.add("/a.tar.gz", model_tgz(tmp_path))
    with caplog.at_level(logging.WARNING, logger="hublayer.handles"):
        hublayer.resolve(file_server.url("/a.tar.gz"))
        hublayer.resolve(file_server.url("/a.tar.gz"), force_download=True)
    warnings = [r for r in caplog.records if "TFHUB_DISABLE_CERT_VALIDATION" in r.getMessage()]
    assert len(warnings) == 2
    with new_client() as client:
        context = client._transport._pool._ssl_context  # type: ignore[attr-defined]
        assert context.verify_mode == ssl.CERT_NONE
    monkeypatch.setenv("TFHUB_DISABLE_CERT_VALIDATION", "false")
    with new_client() as client:
        context = client._transport._pool._ssl_context  # type: ignore[attr-defined]
        assert context.verify_mode == ssl.CERT_REQUIRED


def test_cn_mirror_handles_download_the_gcs_cn_archive_into_the_tfhub_entry() -> None:
    cn = parse_handle("https://hub.tensorflow.google.cn/google/nnlm-en-dim128/2")
    assert isinstance(cn, TfhubHandle)
    assert cn.url() == (
        "https://gcs.tensorflow.google.cn/tfhub-modules/google/nnlm-en-dim128/2.tar.gz"
    )
    assert cn.key == parse_handle("https://tfhub.dev/google/nnlm-en-dim128/2").key
    assert str(cn) == "https://hub.tensorflow.google.cn/google/nnlm-en-dim128/2"
    assert cn.uncompressed_url() == (
        "https://hub.tensorflow.google.cn/google/nnlm-en-dim128/2?tf-hub-format=uncompressed"
    )


# ---------------------------------------------------------------- long names (issue #13)


def test_a_5000_character_url_is_cached_under_short_names(
    file_server: FileServer, tmp_path: Path, hublayer_env: Path
) -> None:
    long_path = "/models/" + "m" * 5000 + ".tar.gz"
    file_server.add(long_path, model_tgz(tmp_path))
    path = Path(hublayer.resolve(file_server.url(long_path)))
    assert (path / "saved_model.pb").read_bytes() == MODEL["saved_model.pb"]
    for root, dirs, files in os.walk(hublayer_env):
        assert all(len(name) <= 255 for name in (*dirs, *files)), root
    assert hublayer.resolve(file_server.url(long_path)) == str(path)


def test_long_handles_of_every_form_fail_only_with_hublayer_errors(
    file_server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBLAYER_TFHUB_ENDPOINT", file_server.url("/tfhub"))
    monkeypatch.setenv("HUBLAYER_KAGGLE_ENDPOINT", file_server.url("/kaggle"))
    long_name = "x" * 5000
    handles = [
        file_server.url(f"/{long_name}"),
        f"https://tfhub.dev/google/{long_name}/{long_name}/1",
        f"kaggle://google/{long_name}/tf2/{long_name}/1",
    ]
    for handle in handles:
        with pytest.raises(HublayerError):  # a 404, never "File name too long"
            hublayer.resolve(handle, offline=False)
    with pytest.raises(HublayerError):
        hublayer.resolve(handles[1], offline=True)


def test_a_long_tfhub_handle_redirected_to_kaggle_writes_a_short_alias(
    file_server: FileServer, tmp_path: Path, hublayer_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBLAYER_TFHUB_ENDPOINT", file_server.url("/tfhub"))
    monkeypatch.setenv("HUBLAYER_KAGGLE_ENDPOINT", file_server.url("/kaggle"))
    long_path = "google/" + "/".join(["n" * 200] * 25) + "/3"
    kaggle = "/kaggle/models/google/long/tensorFlow2/v/3"
    file_server.redirect(f"/tfhub/{long_path}", kaggle)
    file_server.add(kaggle, model_tgz(tmp_path))
    path = Path(hublayer.resolve(f"https://tfhub.dev/{long_path}"))
    assert (path / "saved_model.pb").read_bytes() == MODEL["saved_model.pb"]
    aliases = list((hublayer_env / "aliases").rglob("*.json"))
    assert len(aliases) == 1
    assert all(len(part) <= 255 for part in aliases[0].parts)
    assert hublayer.resolve(f"https://tfhub.dev/{long_path}", offline=True) == str(path)


def test_cli_fetch_caches_the_archive_even_when_the_format_is_uncompressed(
    tfhub: FileServer, tmp_path: Path, hublayer_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from hublayer.cli._app import cli

    tfhub.add(f"/tfhub/{TFHUB_PATH}", model_tgz(tmp_path))
    monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", "UNCOMPRESSED")
    result = CliRunner().invoke(cli, ["fetch", f"https://tfhub.dev/{TFHUB_PATH}"])
    assert result.exit_code == 0, result.output
    path = Path(result.output.strip())
    assert path.is_relative_to(hublayer_env)
    assert (path / "saved_model.pb").read_bytes() == MODEL["saved_model.pb"]
    assert [r.query for r in tfhub.log] == ["tf-hub-format=compressed"]
