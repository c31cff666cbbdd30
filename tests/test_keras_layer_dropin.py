"""tensorflow_hub's own KerasLayer behaviour, as its documentation and users rely on it.

Plain Python inputs, ``compute_output_shape``, ``arguments=`` picking the traced function,
regularization losses visible at any time and counted once, and tensorflow_hub's own
sentences in the errors for the same mistakes. About 40 s on 2 cores.
"""

from __future__ import annotations

import functools
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from _layer_models import IMAGE_SIZE, bert_inputs, images, models

import hublayer as hub
from hublayer.errors import SignatureError


@functools.cache
def _half_plus_one(root: str) -> str:
    """``y = 0.5 * x + 1`` for any float32 shape (an unknown-rank spec), one variable."""
    module = tf.train.Checkpoint()
    module.w = tf.Variable(0.5)
    module.__call__ = tf.function(
        lambda x: module.w * x + 1.0, input_signature=[tf.TensorSpec(None, tf.float32)]
    )
    module.variables = [module.w]
    module.trainable_variables = [module.w]
    tf.saved_model.save(module, root)
    return root


@functools.cache
def _with_return_dict(root: str) -> str:
    """``__call__(x, training=False, return_dict=False)``, traced for every combination."""

    class Model(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(2.0)

        @tf.function
        def __call__(
            self, x: tf.Tensor, training: bool = False, return_dict: bool = False
        ) -> tf.Tensor | dict[str, tf.Tensor]:
            y = self.w * x
            return {"output": y, "squared": y * y} if return_dict else y

    model = Model()
    spec = tf.TensorSpec([None, 3], tf.float32)
    for training in (False, True):
        for return_dict in (False, True):
            model.__call__.get_concrete_function(spec, training, return_dict)
    tf.saved_model.save(model, root)
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dropin")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10.0, 6.0),
        (10, 6.0),
        ([[10.0]], [[6.0]]),
        (np.array([[10.0, 2.0]]), [[6.0, 2.0]]),
        (np.float64(4.0), 3.0),
    ],
    ids=["float", "int", "nested-list", "numpy-float64", "numpy-scalar"],
)
def test_plain_python_and_numpy_inputs_are_converted(
    root: Path, value: object, expected: object
) -> None:
    layer = hub.KerasLayer(_half_plus_one(str(root / "hpo")))
    out = layer(value)
    assert out.dtype == "float32"
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected))


def test_config_round_trip_after_a_plain_call(root: Path) -> None:
    layer = hub.KerasLayer(_half_plus_one(str(root / "hpo")), name="hpo")
    assert float(layer(10.0)) == 6.0
    again = hub.KerasLayer.from_config(layer.get_config())
    assert float(again(10.0)) == 6.0
    assert again.name == "hpo"


def test_unknown_rank_spec_is_described_in_the_error(root: Path) -> None:
    layer = hub.KerasLayer(_half_plus_one(str(root / "hpo")))
    with pytest.raises(SignatureError) as raised:
        layer(tf.constant(["ten"]))
    assert raised.value.expected == "float32[<unknown rank>]"
    assert raised.value.received == "string[1]"
    assert "feed strings" not in str(raised.value)  # the model takes floats, not text


def test_compute_output_shape_agrees_with_compute_output_spec() -> None:
    single = hub.KerasLayer(models()["image_feature_vector"])
    shape = single.compute_output_shape((None, IMAGE_SIZE, IMAGE_SIZE, 3))
    spec = single.compute_output_spec(keras.KerasTensor((None, IMAGE_SIZE, IMAGE_SIZE, 3)))
    assert shape == spec.shape == (None, 16)
    assert single.compute_output_shape((4, IMAGE_SIZE, IMAGE_SIZE, 3)) == (4, 16)

    bert = models()["bert_encoder"]
    as_dict = hub.KerasLayer(bert, signature="serving_default", signature_outputs_as_dict=True)
    shapes = {k: (None, 8) for k in ("input_word_ids", "input_mask", "input_type_ids")}
    out = as_dict.compute_output_shape(shapes)
    # The model declares the sequence length free, so it stays free, in both.
    assert out == {"pooled_output": (None, 16), "sequence_output": (None, None, 16)}
    symbolic = {k: keras.KerasTensor(v, "int32") for k, v in shapes.items()}
    assert {k: t.shape for k, t in as_dict.compute_output_spec(symbolic).items()} == out

    # Any dtype: a string input, and a list of outputs.
    text = hub.KerasLayer(models()["text_embedding"])
    assert text.compute_output_shape((None,)) == (None, 16)
    pair = hub.KerasLayer(lambda x: [x, 2 * x], output_shape=[[3], [3]])
    assert pair.compute_output_shape((None, 3)) == [(None, 3), (None, 3)]
    # A callable that declares nothing: traced, for both methods alike.
    traced = hub.KerasLayer(lambda x: {"twice": 2 * x, "sum": keras.ops.sum(x, axis=-1)})
    assert traced.compute_output_shape((None, 3)) == {"twice": (None, 3), "sum": (None,)}
    symbolic = traced(keras.Input((3,)))
    assert {k: v.shape for k, v in symbolic.items()} == {"twice": (None, 3), "sum": (None,)}
    # tensorflow_hub returned a tf.TensorShape: the tuple answers like one too.
    assert single.compute_output_shape((10, IMAGE_SIZE, IMAGE_SIZE, 3)).as_list() == [10, 16]


def test_arguments_pick_the_traced_function(root: Path) -> None:
    path = _with_return_dict(str(root / "rd"))
    layer = hub.KerasLayer(path, arguments={"return_dict": True})
    x = np.ones((2, 3), "float32")
    eager = layer(x)
    assert sorted(eager) == ["output", "squared"]
    symbolic = layer(keras.Input((3,)))
    assert isinstance(symbolic, dict)
    assert sorted(symbolic) == ["output", "squared"]
    assert layer.compute_output_shape((None, 3)) == {"output": (None, 3), "squared": (None, 3)}
    inputs = keras.Input((3,))
    model = keras.Model(inputs, layer(inputs)["squared"])
    assert model.output_shape == (None, 3)
    np.testing.assert_allclose(model.predict(x, verbose=0), 4.0)
    plain = hub.KerasLayer(path, output_key=None)
    assert plain(keras.Input((3,))).shape == (None, 3)
    np.testing.assert_allclose(plain(x), 2.0)


def test_regularization_losses_show_before_any_call_and_follow_trainable() -> None:
    path = models()["image_feature_vector"]
    loaded = tf.saved_model.load(path)
    expected = sum(float(loss()) for loss in loaded.regularization_losses)
    assert expected > 0
    layer = hub.KerasLayer(path, trainable=True)
    model = keras.Sequential([keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3)), layer])
    count = len(loaded.regularization_losses)
    assert len(model.losses) == count, "one entry per loss, before the first call"
    assert sum(float(v) for v in model.losses) == pytest.approx(expected, rel=1e-6)
    # As in tensorflow_hub: a frozen layer's entries are 0, at once, as often as toggled.
    layer.trainable = False
    assert [float(v) for v in model.losses] == [0.0] * count
    assert [float(v) for v in layer.losses] == [0.0] * count
    layer.trainable = True
    assert sum(float(v) for v in layer.losses) == pytest.approx(expected, rel=1e-6)
    frozen = hub.KerasLayer(path)
    assert [float(v) for v in frozen.losses] == [0.0] * count


def test_regularization_losses_count_once_in_fit() -> None:
    path = models()["image_feature_vector"]
    loaded = tf.saved_model.load(path)
    expected = sum(float(loss()) for loss in loaded.regularization_losses)
    layer = hub.KerasLayer(path, trainable=True)
    model = keras.Sequential([keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3)), layer])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=lambda y, p: keras.ops.zeros(()))
    loss = model.train_on_batch(images(2), np.zeros((2, 16), "float32"))
    assert float(np.asarray(loss)) == pytest.approx(expected, rel=1e-5)
    history = model.fit(images(4), np.zeros((4, 16), "float32"), batch_size=2, verbose=0)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)
    # Partial fine-tuning: the model's losses are opaque callables, so they count while
    # the layer trains, whatever the selection (as in tensorflow_hub), once each.
    head_only = hub.KerasLayer(path, trainable=True, trainable_patterns=[r"beta$"])
    assert sum(float(v) for v in head_only.losses) == pytest.approx(expected, rel=1e-6)


def test_tensorflow_hub_sentences_are_in_the_errors() -> None:
    bert = models()["bert_encoder"]
    with pytest.raises(ValueError, match="either output_key or signature_outputs_as_dict=True"):
        hub.KerasLayer(bert, signature="serving_default")
    with pytest.raises(ValueError, match="signature_outputs_as_dict is only valid if specifying"):
        hub.KerasLayer(bert, signature_outputs_as_dict=True)
    with pytest.raises(ValueError, match="Specifying `output_key` is forbidden if output type"):
        hub.KerasLayer(models()["image_feature_vector"], output_key="feature_vector")


def test_the_error_suggests_what_fits_the_mismatch() -> None:
    image = hub.KerasLayer(models()["image_feature_vector"])
    with pytest.raises(SignatureError, match=r"keras\.layers\.Resizing\(32, 32\)"):
        image(np.zeros((2, 64, 64, 3), "float32"))
    with pytest.raises(SignatureError, match=r"Rescaling\(1 / 255\)") as raised:
        image((images() * 255).astype("uint8"))
    assert "Resizing" not in str(raised.value)
    with pytest.raises(SignatureError, match="batch dimension"):
        image(images()[0])
    bert = hub.KerasLayer(models()["bert_encoder"], output_key="pooled_output")
    as_floats = {k: tf.cast(v, tf.float32) for k, v in bert_inputs().items()}
    with pytest.raises(SignatureError, match="int ids") as raised:
        bert(as_floats)
    assert "Resizing" not in str(raised.value)
    text = hub.KerasLayer(models()["text_embedding"])
    with pytest.raises(SignatureError, match="takes text") as raised:
        text(tf.constant([1.0, 2.0]))
    assert "Resizing" not in str(raised.value)
