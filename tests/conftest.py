"""Fixtures every test gets: a fresh cache, a clean environment, quiet TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hublayer import config


@pytest.fixture(autouse=True)
def hublayer_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give every test its own cache dir and clear the hublayer environment variables."""
    for name in config.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    cache = tmp_path_factory.mktemp("hublayer-cache")
    monkeypatch.setenv("HUBLAYER_CACHE_DIR", str(cache))
    monkeypatch.setenv("HUBLAYER_PROGRESS", "0")
    return cache
