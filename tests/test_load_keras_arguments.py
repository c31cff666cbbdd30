"""``tags`` and ``options`` choose a SavedModel's meta graph and load options; a ``.keras``
file has neither, so passing them for one is refused instead of silently ignored."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import hublayer
from hublayer import testing
from hublayer.errors import InvalidModelError


@pytest.fixture(scope="module")
def keras_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return testing.keras_file(tmp_path_factory.mktemp("k") / "model.keras", image_size=8)


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ({"tags": ["serve"]}, "tags=['serve']"),
        ({"tags": []}, "tags=[]"),
        ({"options": tf.saved_model.LoadOptions()}, "options=<"),
    ],
)
def test_tags_or_options_for_a_keras_file_are_refused(
    keras_path: str, given: dict[str, object], shown: str
) -> None:
    with pytest.raises(InvalidModelError) as caught:
        hublayer.load(keras_path, **given)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith("Expected tags=None and options=None for a .keras model")
    assert shown in message
    assert keras_path in message
    assert caught.value.path == keras_path
    assert isinstance(caught.value, ValueError)


def test_a_folder_holding_a_keras_file_is_refused_too(keras_path: str, tmp_path: Path) -> None:
    folder = tmp_path / "holder"
    folder.mkdir()
    (folder / "model.keras").write_bytes(Path(keras_path).read_bytes())
    with pytest.raises(InvalidModelError, match=r"tags=\['serve'\]"):
        hublayer.load(str(folder), tags=["serve"])


def test_a_keras_layer_with_load_options_on_a_keras_file_is_refused(keras_path: str) -> None:
    with pytest.raises(InvalidModelError, match="options="):
        hublayer.KerasLayer(keras_path, load_options=tf.saved_model.LoadOptions())


def test_without_them_the_keras_file_loads(keras_path: str) -> None:
    model = hublayer.load(keras_path)
    assert isinstance(model, keras.Model)
    out = model(np.zeros((2, 8, 8, 3), np.float32))
    assert tuple(out.shape) == (2, 10)
