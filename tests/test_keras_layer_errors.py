"""Mistakes a KerasLayer user makes, and the errors that name the fix.

About 15 s on 2 cores, plus about 25 s for the slow other-backend subprocess.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from _layer_models import IMAGE_SIZE, bert_inputs, images, models

import hublayer as hub
from hublayer.errors import (
    BackendError,
    ModelNotFoundError,
    NotTrainableError,
    SignatureError,
)


def test_unknown_signature_lists_the_signatures() -> None:
    with pytest.raises(SignatureError) as raised:
        hub.KerasLayer(models()["bert_encoder"], signature="serve", output_key="x")
    assert raised.value.available == ["encode", "serving_default"]
    assert "'encode', 'serving_default'" in str(raised.value)
    assert "signature='serve'" in str(raised.value)


def test_unknown_output_key_lists_the_outputs_at_construction() -> None:
    with pytest.raises(SignatureError) as raised:
        hub.KerasLayer(models()["bert_encoder"], output_key="pooled")
    assert raised.value.available == ["pooled_output", "sequence_output"]
    assert "output_key='pooled'" in str(raised.value)


def test_signature_needs_exactly_one_of_output_key_and_whole_dict() -> None:
    path = models()["bert_encoder"]
    with pytest.raises(SignatureError) as raised:
        hub.KerasLayer(path, signature="serving_default")
    assert raised.value.available == ["pooled_output", "sequence_output"]
    assert "signature_outputs_as_dict=True" in str(raised.value)
    with pytest.raises(SignatureError, match="exactly one"):
        hub.KerasLayer(
            path,
            signature="serving_default",
            output_key="pooled_output",
            signature_outputs_as_dict=True,
        )
    with pytest.raises(ValueError, match="only together with signature="):
        hub.KerasLayer(path, signature_outputs_as_dict=True)


def test_output_key_on_a_single_output_says_to_remove_it() -> None:
    with pytest.raises(SignatureError, match="Remove output_key"):
        hub.KerasLayer(models()["image_feature_vector"], output_key="feature_vector")


def test_wrong_image_size_shows_expected_and_received_specs() -> None:
    layer = hub.KerasLayer(models()["image_feature_vector"])
    with pytest.raises(SignatureError) as raised:
        layer(keras.Input((64, 64, 3)))  # caught while building the functional model
    assert raised.value.expected == f"float32[?,{IMAGE_SIZE},{IMAGE_SIZE},3]"
    assert raised.value.received == "float32[?,64,64,3]"
    assert "Resizing" in str(raised.value)
    with pytest.raises(SignatureError, match=r"Received: float32\[2,64,64,3\]"):
        layer(np.zeros((2, 64, 64, 3), "float32"))


def test_integer_images_are_not_silently_cast() -> None:
    layer = hub.KerasLayer(models()["image_feature_vector"])
    with pytest.raises(SignatureError, match=r"Received: uint8\[4,32,32,3\]"):
        layer((images() * 255).astype("uint8"))


def test_dict_inputs_with_missing_keys() -> None:
    layer = hub.KerasLayer(models()["bert_encoder"], output_key="pooled_output")
    feed = bert_inputs()
    del feed["input_type_ids"]
    with pytest.raises(SignatureError) as raised:
        layer(feed)
    assert "input_type_ids" in raised.value.expected
    assert "input_type_ids" not in raised.value.received
    with pytest.raises(SignatureError, match="Expected inputs"):
        layer(tf.ones([2, 8], tf.int32))  # a tensor where a dict is expected


def test_castable_inputs_are_accepted() -> None:
    layer = hub.KerasLayer(models()["bert_encoder"], output_key="pooled_output")
    as_int64 = {k: tf.cast(v, tf.int64) for k, v in bert_inputs().items()}
    np.testing.assert_allclose(layer(as_int64), layer(bert_inputs()), rtol=1e-6)
    image_layer = hub.KerasLayer(models()["image_feature_vector"])
    np.testing.assert_allclose(
        image_layer(images().astype("float64")), image_layer(images()), rtol=1e-6
    )


def test_trainable_tf1_graph_is_an_error_with_tensorflow_hubs_sentence() -> None:
    with pytest.raises(NotTrainableError, match="TF1 Hub format") as raised:
        hub.KerasLayer(_tf1_hub_module(), trainable=True)
    assert raised.value.handle is not None
    assert "Setting hub.KerasLayer.trainable = True is unsupported" in str(raised.value)
    layer = hub.KerasLayer(models()["tf1_saved_model"])
    with pytest.raises(NotTrainableError, match="trainable=False"):
        layer.trainable = True
    assert layer.trainable is False


def _tf1_hub_module() -> str:
    """The factory's TF1 SavedModel plus tfhub_module.pb: the legacy TF1 Hub format."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp()) / "module"
    shutil.copytree(models()["tf1_saved_model"], folder)
    (folder / "tfhub_module.pb").write_bytes(b"")
    return str(folder)


def test_model_without_trainable_variables_logs_once_and_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tf.train.Checkpoint()
    root.table = tf.Variable(tf.ones([4, 2]))
    root.variables = [root.table]
    root.trainable_variables = []
    root.__call__ = tf.function(
        lambda ids: tf.gather(root.table, ids), input_signature=[tf.TensorSpec([None], tf.int32)]
    )
    tf.saved_model.save(root, str(tmp_path / "frozen"))
    with caplog.at_level("ERROR", logger="hublayer"):
        layer = hub.KerasLayer(str(tmp_path / "frozen"), trainable=True)
        layer.trainable = True
        out = layer(tf.constant([1, 2]))
    assert out.shape == (2, 2)
    assert layer.trainable is True
    assert layer.trainable_weights == []
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1  # once per layer, as tensorflow_hub logs it
    assert "zero trainable weights" in errors[0].getMessage()
    assert str(tmp_path / "frozen") in errors[0].getMessage()


def test_partial_selection_that_selects_nothing_is_an_error() -> None:
    path = models()["image_feature_vector"]
    with pytest.raises(NotTrainableError, match="select none"):
        hub.KerasLayer(path, trainable=True, trainable_patterns=["no_such_layer"])
    layer = hub.KerasLayer(path)
    with pytest.raises(NotTrainableError):
        layer.unfreeze(["no_such_layer"])
    assert layer.trainable is False
    with pytest.raises(ValueError, match="does not compile"):
        hub.KerasLayer(path, trainable_patterns=["block_("])
    with pytest.raises(ValueError, match="trainable_last_n"):
        hub.KerasLayer(path, trainable_last_n=-1)


def test_missing_model_and_folder_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as raised:
        hub.KerasLayer(str(tmp_path / "nowhere"))
    assert raised.value.path == str(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.md").write_text("not a model")
    # A folder that exists is an invalid model: a ValueError, as in tensorflow_hub.
    with pytest.raises(ValueError, match=r"saved_model\.pb") as invalid:
        hub.load(str(tmp_path / "empty"))
    assert "README.md" in str(invalid.value)


def test_config_values_must_be_json() -> None:
    layer = hub.KerasLayer(lambda x, scale: x * scale, arguments={"scale": 2.0})
    with pytest.raises(NotImplementedError, match="handle string"):
        layer.get_config()
    with_object = hub.KerasLayer(
        models()["text_embedding"], arguments={}, output_shape=[16], name="text"
    )
    assert with_object.get_config()["output_shape"] == [16]
    bad = hub.KerasLayer(models()["image_feature_vector"])
    bad._arguments = {"callback": object()}
    with pytest.raises(ValueError, match="JSON-serializable"):
        bad.get_config()


def test_callable_with_tags_is_an_error() -> None:
    with pytest.raises(ValueError, match="tags=None"):
        hub.KerasLayer(lambda x: x, tags=["serve"])


def test_other_backends_are_refused_in_code(monkeypatch: pytest.MonkeyPatch) -> None:
    # TensorFlow and JAX (through tf2jax) host SavedModels; PyTorch cannot.
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(BackendError) as raised:
        hub.KerasLayer(models()["image_feature_vector"])
    assert isinstance(raised.value, NotImplementedError)
    assert raised.value.backend == "torch"
    assert "KERAS_BACKEND=tensorflow" in str(raised.value)


def _other_backend() -> str | None:
    for name in ("torch",):  # jax is a supported backend (tf2jax)
        if importlib.util.find_spec(name) is not None:
            return name
    return None


@pytest.mark.slow
@pytest.mark.skipif(_other_backend() is None, reason="torch is not installed")
def test_other_backends_are_refused_in_a_real_process() -> None:
    backend = _other_backend()
    script = (
        "import hublayer as hub\n"
        "try:\n"
        f"    hub.KerasLayer({models()['image_feature_vector']!r})\n"
        "except NotImplementedError as error:\n"
        "    print(type(error).__name__, error.backend)\n"
    )
    env: dict[str, Any] = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert f"BackendError {backend}" in done.stdout, done.stderr[-3000:]
