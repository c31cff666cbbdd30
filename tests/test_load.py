"""hublayer.load: like tensorflow_hub.load, for SavedModels (TF2 and TF1) and .keras files.

About 10 s on 2 cores.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from _layer_models import images, models, sentences

import hublayer as hub
from hublayer import testing
from hublayer.errors import HandleError, InvalidModelError, ModelNotFoundError


def test_tf2_saved_model_is_callable_like_hub_load() -> None:
    model = hub.load(models()["image_feature_vector"])
    assert model(images(), training=False).shape == (4, 16)
    assert sorted(model.signatures) == ["serving_default"]
    assert len(model.trainable_variables) == 6
    assert model._is_hub_module_v1 is False
    assert hub.load is hub.models.load


def test_keras_file_and_folder_holding_one(tmp_path: Path) -> None:
    model = hub.load(models()["keras_file"])
    assert isinstance(model, keras.Model)
    assert model.output_shape == (None, 10)
    folder = tmp_path / "download"
    folder.mkdir()
    shutil.copy(models()["keras_file"], folder / "model.keras")
    again = hub.load(folder)
    np.testing.assert_allclose(again(images()), model(images()), rtol=1e-6)


def test_tf1_model_with_two_meta_graphs_loads_the_untagged_one(tmp_path: Path) -> None:
    path = testing.tf1_saved_model(tmp_path / "tf1", train_graph=True)
    with pytest.raises(ValueError, match="tags="):  # TensorFlow alone cannot choose
        tf.saved_model.load(path)
    default = hub.load(path).signatures["default"]
    train = hub.load(path, tags=["train"]).signatures["default"]
    np.testing.assert_allclose(
        default(default=sentences())["default"], train(default=sentences())["default"]
    )
    layer = hub.KerasLayer(path)
    assert layer(sentences()).shape == (3, 8)


def test_tf1_hub_module_is_marked_like_tensorflow_hub(tmp_path: Path) -> None:
    path = tmp_path / "module"
    shutil.copytree(models()["tf1_saved_model"], path)
    (path / "tfhub_module.pb").write_bytes(b"")
    assert hub.load(path)._is_hub_module_v1 is True


def test_load_options_are_passed_on() -> None:
    options = tf.saved_model.LoadOptions(experimental_io_device="/job:localhost")
    model = hub.load(models()["text_embedding"], options=options)
    assert model(sentences()).shape == (3, 16)


def test_archive_handles_resolve_through_the_cache(tmp_path: Path, hublayer_env: Path) -> None:
    archive = testing.archive(models()["text_embedding"], tmp_path / "nnlm.tar.gz")
    model = hub.load(archive)
    assert model(sentences()).shape == (3, 16)
    assert any(hublayer_env.iterdir())


def test_errors_name_what_is_there(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as raised:
        hub.load(tmp_path / "missing")
    assert raised.value.path == str(tmp_path / "missing")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "weights.bin").write_bytes(b"\0")
    with pytest.raises(InvalidModelError) as invalid:  # a ValueError, as in tensorflow_hub
        hub.load(tmp_path / "folder")
    assert "weights.bin" in str(invalid.value)
    assert invalid.value.handle == str(tmp_path / "folder")
    with pytest.raises(HandleError):
        hub.load("ftp://example.com/model")
