"""Pinned handles through KerasLayer, load and inspect; .keras files that refuse a changed model."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

import hublayer as hub
from hublayer.errors import IntegrityError
from hublayer.testing import FileServer, archive, image_feature_vector

SIZE = 32


@pytest.fixture
def served(file_server: FileServer, tmp_path: Path) -> str:
    """A small image feature vector, as a .tar.gz on the loopback server; its URL."""
    folder = image_feature_vector(tmp_path / "ifv", image_size=SIZE)
    assert file_server.root is not None
    archive(folder, file_server.root / "ifv.tar.gz")
    return file_server.url("/ifv.tar.gz")


def _images(n: int = 2) -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(n, SIZE, SIZE, 3)).astype("float32")


def _tampered(source: Path, dest: Path) -> Path:
    """A copy of the .keras file whose embedded weights were replaced (same size)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if "saved_model/variables/variables.data" in info.filename:
                values = np.frombuffer(data[: len(data) // 4 * 4], dtype="float32")
                other = (values * 0.5 + 0.25).astype("float32").tobytes()
                data = other + data[len(other) :]
            zout.writestr(info, data)
    return dest


def test_pinned_handles_load_through_every_entry_point(served: str) -> None:
    pinned = hub.pin(served)
    layer = hub.KerasLayer(pinned)
    assert layer(_images()).shape[0] == 2
    assert sorted(hub.load(pinned).signatures) == ["serving_default"]
    assert hub.inspect(pinned).path == hub.resolve(served)
    wrong = served + "@sha256:" + "0" * 64
    for entry_point in (hub.KerasLayer, hub.load, hub.inspect):
        with pytest.raises(IntegrityError, match=r"0{64}"):
            entry_point(wrong)


def test_a_keras_file_refuses_changed_embedded_weights_even_when_they_scan_clean(
    served: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinned = hub.pin(served)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), hub.KerasLayer(pinned)])
    expected = model.predict(_images(), verbose=0)
    saved = tmp_path / "model.keras"
    model.save(saved)
    # untouched, it loads offline from an empty cache: the embedded copy is the model
    monkeypatch.setenv("HUBLAYER_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HUBLAYER_OFFLINE", "1")
    again = keras.saving.load_model(saved)
    np.testing.assert_allclose(again.predict(_images(), verbose=0), expected, rtol=1e-6)
    # changed weights inside the zip: refused before anything of it loads
    bad = _tampered(saved, tmp_path / "tampered.keras")
    with zipfile.ZipFile(bad) as z:
        z.extractall(tmp_path / "unzipped")
    (embedded,) = (tmp_path / "unzipped").rglob("saved_model.pb")
    assert hub.scan(embedded.parent).safe  # the look-alike scans clean
    changed = hub.handles.content_digest(embedded.parent)
    for load in (hub.load, hub.KerasLayer):
        with pytest.raises(IntegrityError) as caught:
            load(str(bad))
        assert caught.value.received == changed
        assert str(caught.value.expected) in str(caught.value)
        assert changed in str(caught.value)
    # plain Keras refuses it too (the layer checks its copy); Keras words it a ValueError
    with pytest.raises(ValueError, match=f"Expected the model embedded.*Received: {changed}"):
        keras.saving.load_model(bad)


def test_an_unpinned_handle_is_checked_against_the_recorded_digest(tmp_path: Path) -> None:
    folder = image_feature_vector(tmp_path / "local", image_size=SIZE)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), hub.KerasLayer(str(folder))])
    saved = tmp_path / "model.keras"
    model.save(saved)
    shutil.rmtree(folder)
    assert keras.saving.load_model(saved).predict(_images(), verbose=0).shape[0] == 2
    with pytest.raises(IntegrityError, match=r"recorded in the \.keras file"):
        hub.load(_tampered(saved, tmp_path / "tampered.keras"))
