"""Parsing handle strings: every accepted form, normalisation, and clear refusals."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hublayer.errors import HandleError
from hublayer.handles import (
    SCHEMES,
    HfHandle,
    HttpHandle,
    KaggleHandle,
    LocalHandle,
    StoreHandle,
    TfhubHandle,
    parse_handle,
)

MOBILENET = KaggleHandle("google", "mobilenet-v2", "tensorFlow2", "100-224-feature-vector", 5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/models/bert", LocalHandle(Path("/models/bert"))),
        ("file:///models/my%20bert", LocalHandle(Path("/models/my bert"))),
        ("file://localhost/models/bert", LocalHandle(Path("/models/bert"))),
        (
            "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5",
            TfhubHandle("google/imagenet/mobilenet_v2_100_224/feature_vector/5"),
        ),
        (
            "https://tfhub.dev/google/nnlm-en-dim128/2?tf-hub-format=compressed",
            TfhubHandle("google/nnlm-en-dim128/2"),
        ),
        (
            "https://www.kaggle.com/models/google/mobilenet-v2/tensorFlow2/100-224-feature-vector/5",
            MOBILENET,
        ),
        (
            "https://www.kaggle.com/models/google/mobilenet-v2/frameworks/tensorFlow2/"
            "variations/100-224-feature-vector/versions/5",
            MOBILENET,
        ),
        ("kaggle://google/mobilenet-v2/tensorFlow2/100-224-feature-vector/5", MOBILENET),
        (
            "kaggle://google/mobilenet-v2/tensorFlow2/100-224-feature-vector",
            dataclasses.replace(MOBILENET, version=None),
        ),
        ("https://example.com/m/model.tar.gz", HttpHandle("https://example.com/m/model.tar.gz")),
        ("http://127.0.0.1:8080/x", HttpHandle("http://127.0.0.1:8080/x")),
        ("gs://bucket/models/bert", StoreHandle("gs", "bucket", "models/bert")),
        ("s3://bucket/m.tar.gz", StoreHandle("s3", "bucket", "m.tar.gz")),
        ("hf://org/repo", HfHandle("org/repo")),
        ("hf://org/repo@v1.0/tf/saved", HfHandle("org/repo", "v1.0", "tf/saved")),
    ],
)
def test_every_form_parses_to_its_handle(text: str, expected: object) -> None:
    assert parse_handle(text) == expected


def test_relative_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    handle = parse_handle("./model.tar.gz")
    assert handle == LocalHandle(tmp_path / "model.tar.gz")
    assert isinstance(handle, LocalHandle)
    assert handle.is_archive


def test_handles_are_frozen_and_parse_is_idempotent() -> None:
    handle = parse_handle("kaggle://google/bert/tensorFlow2/en/3")
    with pytest.raises(dataclasses.FrozenInstanceError):
        handle.version = 4  # type: ignore[misc, union-attr]
    assert parse_handle(handle) is handle


def test_kaggle_spellings_share_one_lower_case_key() -> None:
    keys = {
        parse_handle(text).key
        for text in (
            "kaggle://google/mobilenet-v2/TensorFlow2/100-224-feature-vector/5",
            "kaggle://Google/Mobilenet-V2/tensorflow2/100-224-feature-vector/5",
            "https://www.kaggle.com/models/google/mobilenet-v2/frameworks/TensorFlow2/"
            "variations/100-224-feature-vector/versions/5",
        )
    }
    assert keys == {"kaggle/google/mobilenet-v2/tensorflow2/100-224-feature-vector/5"}


def test_keys_are_safe_relative_paths() -> None:
    handle = parse_handle("s3://bucket/../../etc/my model.tar.gz")
    assert ".." not in handle.key.split("/")
    assert " " not in handle.key
    assert not handle.key.startswith("/")


def test_configured_endpoints_are_spellings_of_tfhub_and_kaggle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUBLAYER_TFHUB_ENDPOINT", "http://127.0.0.1:9/tfhub")
    monkeypatch.setenv("HUBLAYER_KAGGLE_ENDPOINT", "http://127.0.0.1:9/kaggle")
    assert parse_handle("http://127.0.0.1:9/tfhub/google/nnlm/2") == TfhubHandle("google/nnlm/2")
    assert parse_handle("http://127.0.0.1:9/kaggle/models/a/b/c/d/1") == KaggleHandle(
        "a", "b", "c", "d", 1
    )
    assert parse_handle("http://127.0.0.1:9/other.tar.gz") == HttpHandle(
        "http://127.0.0.1:9/other.tar.gz"
    )


def test_handle_fitting_two_forms_is_refused_with_both_fixes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUBLAYER_TFHUB_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HUBLAYER_KAGGLE_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(HandleError, match="fits both tfhub and kaggle") as info:
        parse_handle("http://127.0.0.1:9/models/a/b/c/d/1")
    assert "kaggle://" in str(info.value)
    assert "https://tfhub.dev/" in str(info.value)
    assert info.value.handle == "http://127.0.0.1:9/models/a/b/c/d/1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ftp://host/model", "Unknown scheme 'ftp'"),
        ("", "non-empty"),
        ("https://tfhub.dev/google/nnlm", "publisher, a name and a version"),
        ("https://tfhub.dev/google/nnlm/latest", "publisher, a name and a version"),
        ("kaggle://google/bert/tf2", "<owner>/<model>/<framework>/<variation>"),
        ("kaggle://google/bert/tf2/en/0", "whole number >= 1"),
        ("kaggle://google/bert/tf2/en/1/extra", "<owner>/<model>"),
        ("hf://just-a-repo", "hf://<org>/<repo>"),
        ("gs:///no-bucket", "gs://<bucket>/<path>"),
        ("file://otherhost/x", "file:// URL on this machine"),
    ],
)
def test_bad_handles_raise_handle_error_listing_every_form(text: str, message: str) -> None:
    with pytest.raises(HandleError, match=message) as info:
        parse_handle(text)
    assert isinstance(info.value, ValueError)
    for scheme in SCHEMES:
        for form in scheme.forms:
            assert form in str(info.value)


def test_non_string_handle_is_refused() -> None:
    with pytest.raises(HandleError, match="Expected a handle string"):
        parse_handle(42)  # type: ignore[arg-type]


def test_http_handle_asks_for_the_compressed_format_unless_it_is_an_archive() -> None:
    assert HttpHandle("https://h/m").request_url() == "https://h/m?tf-hub-format=compressed"
    assert HttpHandle("https://h/m?a=1").request_url() == "https://h/m?a=1&tf-hub-format=compressed"
    assert HttpHandle("https://h/m.tgz").request_url() == "https://h/m.tgz"
