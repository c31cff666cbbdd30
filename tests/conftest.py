"""Fixtures every test gets: a fresh cache, a clean environment, quiet TensorFlow."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hublayer import config
from hublayer.testing import FileServer


@pytest.fixture(autouse=True)
def hublayer_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give every test its own cache dir and clear the hublayer environment variables."""
    for name in config.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    cache = tmp_path_factory.mktemp("hublayer-cache")
    monkeypatch.setenv("HUBLAYER_CACHE_DIR", str(cache))
    monkeypatch.setenv("HUBLAYER_PROGRESS", "0")
    return cache


@pytest.fixture
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    """A running ``hublayer.testing.FileServer`` on 127.0.0.1, serving its own empty folder.

    Put files in ``file_server.root`` or add routes; tell it to misbehave with ``fail``,
    ``drop``, ``truncate``, ``slow``, ``redirect`` and ``range_support``.
    """
    with FileServer(tmp_path_factory.mktemp("served")) as server:
        yield server
