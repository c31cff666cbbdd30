"""Fixtures every test gets: a fresh cache, a clean environment, quiet TensorFlow."""

from __future__ import annotations

import builtins
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture
def without_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import ray`` fails, as on a machine without the ``[ray]`` extra."""
    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    for name in [m for m in list(sys.modules) if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A local Ray of 2 CPUs for one test module (Ray Data and Ray Train), shut down after it;
    the module is skipped where Ray is not installed."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    pytest.importorskip("ray.train.tensorflow")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
