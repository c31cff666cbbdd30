"""config.py: every environment variable is read when used; an argument always wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from hublayer import config


def test_cache_dir_prefers_argument_then_hublayer_then_tfhub(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HUBLAYER_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "b"))
    assert config.cache_dir(tmp_path / "c") == tmp_path / "c"
    assert config.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("HUBLAYER_CACHE_DIR")
    assert config.cache_dir() == tmp_path / "b"


def test_cache_dir_defaults_to_home_not_tmp(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HUBLAYER_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config.cache_dir() == tmp_path / ".cache" / "hublayer"


def test_values_are_read_when_used_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.offline() is False
    monkeypatch.setenv("HUBLAYER_OFFLINE", "yes")
    assert config.offline() is True
    assert config.offline(False) is False


def test_bad_flag_names_the_variable_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBLAYER_OFFLINE", "maybe")
    with pytest.raises(ValueError, match=r"HUBLAYER_OFFLINE='maybe'.*unset"):
        config.offline()


def test_bad_number_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBLAYER_DOWNLOAD_TIMEOUT", "-3")
    with pytest.raises(ValueError, match="HUBLAYER_DOWNLOAD_TIMEOUT"):
        config.download_timeout()
    assert config.download_timeout(2.5) == 2.5


def test_endpoints_are_configurable_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.tfhub_endpoint() == "https://tfhub.dev"
    monkeypatch.setenv("HUBLAYER_KAGGLE_ENDPOINT", "http://127.0.0.1:8000/")
    assert config.kaggle_endpoint() == "http://127.0.0.1:8000"
    monkeypatch.setenv("HUBLAYER_TFHUB_ENDPOINT", "ftp://mirror")
    with pytest.raises(ValueError, match="http"):
        config.tfhub_endpoint()
