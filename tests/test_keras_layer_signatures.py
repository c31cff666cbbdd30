"""Signature-only SavedModels (no ``__call__``): called, fine-tuned, saved, any batch size.

The models are written the ways people make them (``hublayer.testing.signature_model``):
Keras 3 ``model.export()``, ``tf.saved_model.save`` with only ``signatures=``, a module with
``serve`` and ``serve_train`` signatures, and an onnx2tf-style model with a batch of 1.
About 60 s on 2 cores.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import hublayer as hub
from hublayer import testing
from hublayer.errors import SignatureError

SIZE = 8
DIM = 4
STYLES = ["export", "signatures", "serve_train"]
# The signature each style trains through, and what a user passes to get it.
KWARGS = {
    "export": {},
    "signatures": {},
    "serve_train": {"signature": "serve", "training_signature": "serve_train"},
}


@functools.cache
def _model(style: str, batch_size: int | None = None) -> str:
    root = Path(_root()) / f"{style}-{batch_size}"
    return testing.signature_model(
        root, style=style, image_size=SIZE, dim=DIM, batch_size=batch_size
    )  # type: ignore[arg-type]


@functools.cache
def _root() -> str:
    import atexit
    import shutil
    import tempfile

    root = tempfile.mkdtemp(prefix="hublayer-signature-tests-")
    atexit.register(shutil.rmtree, root, True)
    return root


def _images(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, SIZE, SIZE, 3), dtype=np.float32)


def _direct(style: str, x: np.ndarray) -> np.ndarray:
    loaded = tf.saved_model.load(_model(style))
    name = "serve" if style == "serve_train" else "serving_default"
    (out,) = loaded.signatures[name](tf.constant(x)).values()
    return np.asarray(out)


def _regression(layer: keras.Layer) -> keras.Model:
    inputs = keras.Input((SIZE, SIZE, 3))
    head = keras.layers.Dense(1, kernel_initializer=keras.initializers.Ones())
    return keras.Model(inputs, head(layer(inputs)))


def _snapshot(layer: keras.Layer) -> list[np.ndarray]:
    return [np.array(w.numpy()) for w in layer.weights]


@pytest.mark.parametrize("style", STYLES)
def test_inference_matches_a_direct_call_without_signature_or_output_key(style: str) -> None:
    layer = hub.KerasLayer(_model(style), **KWARGS[style])  # type: ignore[arg-type]
    x = _images(3)
    np.testing.assert_allclose(layer(x), _direct(style, x), rtol=1e-5, atol=1e-6)
    assert layer.compute_output_shape((None, SIZE, SIZE, 3)) == (None, DIM)


@pytest.mark.parametrize("style", STYLES)
def test_trainable_adam_moves_every_trainable_weight_and_frozen_moves_none(style: str) -> None:
    layer = hub.KerasLayer(_model(style), trainable=True, **KWARGS[style])  # type: ignore[arg-type]
    paths = layer.variable_paths
    trainable = {p for p, w in zip(paths, layer.weights, strict=True) if w.trainable}
    # Conv, BatchNorm gamma/beta and the head: every weight the Keras model trains.
    assert trainable == {
        "conv/kernel",
        "conv/bias",
        "bn/gamma",
        "bn/beta",
        "head/kernel",
        "head/bias",
    }
    model = _regression(layer)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = _snapshot(layer)
    x, y = _images(16), np.random.default_rng(1).normal(size=(16, 1)).astype("float32")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    after = _snapshot(layer)
    for path, weight, old, new in zip(paths, layer.weights, before, after, strict=True):
        if weight.trainable:
            assert not np.allclose(old, new), f"{style}: {path} did not move"
    np.testing.assert_allclose(layer(x[:2]), _direct_after(layer, x[:2]), rtol=1e-5)

    frozen = hub.KerasLayer(_model(style), **KWARGS[style])  # type: ignore[arg-type]
    frozen_model = _regression(frozen)
    frozen_model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = _snapshot(frozen)
    frozen_model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert frozen.trainable_weights == []
    for old, new in zip(before, _snapshot(frozen), strict=True):
        np.testing.assert_array_equal(old, new)


def _direct_after(layer: hub.KerasLayer, x: np.ndarray) -> np.ndarray:
    """The trained model, called through the loaded object the layer holds."""
    assert layer._loaded is not None
    signature = layer._loaded.target.fn  # the very function the layer calls
    (out,) = signature(tf.constant(x)).values()
    return np.asarray(out)


@pytest.mark.parametrize("style", STYLES)
def test_keras_round_trip_keeps_the_fine_tuned_weights(style: str, tmp_path: Path) -> None:
    layer = hub.KerasLayer(_model(style), trainable=True, **KWARGS[style])  # type: ignore[arg-type]
    model = _regression(layer)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x, y = _images(8), np.ones((8, 1), "float32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    expected = model.predict(x, verbose=0)
    assert not np.allclose(expected[:, 0], _direct(style, x).sum(axis=1), atol=1e-4)
    model.save(tmp_path / "tuned.keras")
    reloaded = keras.models.load_model(tmp_path / "tuned.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    again = reloaded.layers[1]
    assert isinstance(again, hub.KerasLayer)
    assert [w.trainable for w in again.weights] == [w.trainable for w in layer.weights]
    assert again.get_config()["training_signature"] == KWARGS[style].get("training_signature")
    if style == "serve_train":  # the reloaded layer still trains through serve_train
        assert not np.allclose(again(x, training=True), again(x, training=False), atol=1e-4)


def test_training_signature_runs_in_training_mode_and_inference_is_default() -> None:
    x = _images(8)
    layer = hub.KerasLayer(
        _model("serve_train"), trainable=True, signature="serve", training_signature="serve_train"
    )
    np.testing.assert_allclose(layer(x, training=False), _direct("serve_train", x), rtol=1e-5)
    # BatchNorm batch statistics: training=True gives other numbers.
    assert not np.allclose(layer(x, training=True), layer(x, training=False), atol=1e-4)
    moving = [w for w, p in zip(layer.weights, layer.variable_paths, strict=True) if "moving" in p]
    before = [np.array(w.numpy()) for w in moving]
    layer(x, training=True)
    assert any(not np.allclose(b, w.numpy()) for b, w in zip(before, moving, strict=True))
    # Not trainable: training=True reaches nothing (the BatchNorm rule), as for __call__.
    frozen = hub.KerasLayer(
        _model("serve_train"), signature="serve", training_signature="serve_train"
    )
    np.testing.assert_allclose(frozen(x, training=True), frozen(x, training=False))
    # Without training_signature, training runs the inference signature.
    plain = hub.KerasLayer(_model("serve_train"), trainable=True, signature="serve")
    np.testing.assert_allclose(plain(x, training=True), plain(x, training=False))


def test_several_signatures_without_serving_default_list_the_choices() -> None:
    with pytest.raises(SignatureError) as raised:
        hub.KerasLayer(_model("serve_train"))
    assert raised.value.available == ["serve", "serve_train"]
    assert "signature=" in str(raised.value)
    with pytest.raises(SignatureError, match="training_signature"):
        hub.KerasLayer(_model("serve_train"), signature="serve", training_signature="nope")
    with pytest.raises(ValueError, match="training_signature"):
        hub.KerasLayer(
            testing.image_feature_vector(Path(_root()) / "ifv", image_size=SIZE),
            training_signature="serving_default",
        )


def test_fixed_batch_of_one_runs_any_batch_size(caplog: pytest.LogCaptureFixture) -> None:
    path = _model("onnx2tf")
    layer = hub.KerasLayer(path)
    loaded = tf.saved_model.load(path).signatures["serving_default"]
    x = _images(5)
    expected = np.concatenate([loaded(x=tf.constant(x[i : i + 1]))["output_0"] for i in range(5)])
    with caplog.at_level(logging.WARNING, logger="hublayer"):
        np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-6)
        layer(x[:3])
    warnings = [r.getMessage() for r in caplog.records if "exactly 1" in r.getMessage()]
    assert len(warnings) == 1
    assert "slower" in warnings[0]
    np.testing.assert_allclose(layer(x[:1]), expected[:1], rtol=1e-5, atol=1e-6)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), layer])
    assert model.output_shape == (None, DIM)
    many = _images(37, seed=3)  # predict() batches of 32, then a last batch of 5
    direct = np.concatenate([loaded(x=tf.constant(many[i : i + 1]))["output_0"] for i in range(37)])
    np.testing.assert_allclose(model.predict(many, verbose=0), direct, rtol=1e-5, atol=1e-6)


def test_fixed_batch_of_two_pads_an_odd_batch_and_fine_tunes() -> None:
    layer = hub.KerasLayer(_model("export", batch_size=2), trainable=True)
    x = _images(5)
    whole = np.concatenate([layer(x[i : i + 2]) for i in (0, 2)] + [layer(x[4:5])])
    np.testing.assert_allclose(layer(x), whole, rtol=1e-5, atol=1e-6)
    model = _regression(layer)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = _snapshot(layer)
    model.fit(_images(6), np.ones((6, 1), "float32"), batch_size=3, epochs=1, verbose=0)
    moved = [not np.allclose(a, b) for a, b in zip(before, _snapshot(layer), strict=True)]
    assert moved == [w.trainable for w in layer.weights]


def test_onnx2tf_model_has_nothing_to_train_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="hublayer"):
        layer = hub.KerasLayer(_model("onnx2tf"), trainable=True)
    assert layer.weights == []
    assert any("zero trainable weights" in r.getMessage() for r in caplog.records)
    assert layer(_images(2)).shape == (2, DIM)


def test_factory_refuses_bad_arguments_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="style"):
        testing.signature_model(tmp_path / "a", style="torchscript")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        testing.signature_model(tmp_path / "b", batch_size=0)
    assert list(tmp_path.iterdir()) == []
    path = testing.signature_model(tmp_path / "c", style="onnx2tf", image_size=4, dim=2)
    loaded = tf.saved_model.load(path)
    (spec,) = loaded.signatures["serving_default"].structured_input_signature[1].values()
    assert spec.shape == (1, 4, 4, 3)
    assert not callable(loaded)  # signature-only: no __call__
    with pytest.raises(FileExistsError):
        testing.signature_model(path, overwrite=False)


def test_several_outputs_without_output_key_list_them(tmp_path: Path) -> None:
    module = tf.Module()
    module.w = tf.Variable(2.0)
    module.serve = tf.function(
        lambda x: {"logits": module.w * x, "probs": tf.nn.softmax(module.w * x)},
        input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")],
    )
    tf.saved_model.save(module, str(tmp_path / "two"), signatures={"serving_default": module.serve})
    with pytest.raises(SignatureError) as raised:
        hub.KerasLayer(str(tmp_path / "two"))
    assert raised.value.available == ["logits", "probs"]
    assert "output_key" in str(raised.value)
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(hub.KerasLayer(str(tmp_path / "two"), output_key="logits")(x), 2.0)
    both = hub.KerasLayer(str(tmp_path / "two"), signature_outputs_as_dict=True)(x)
    assert sorted(both) == ["logits", "probs"]


def test_a_named_signature_of_a_call_model_fine_tunes_too() -> None:
    from _layer_models import bert_inputs, models

    layer = hub.KerasLayer(
        models()["bert_encoder"],
        signature="encode",
        trainable=True,  # one output: no key
    )
    assert layer.trainable_weights, "the signature's captured variables train"
    feed = bert_inputs(batch=4)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(feed)))
    grads = tape.gradient(loss, layer.trainable_weights)
    optimizer = keras.optimizers.Adam(1e-2)
    used = [
        (g, w)
        for g, w in zip(grads, layer.trainable_weights, strict=True)
        if g is not None and float(tf.reduce_max(tf.abs(tf.convert_to_tensor(g)))) > 0
    ]
    assert used, "gradients reach the variables through the signature"
    before = [np.array(w.numpy()) for _, w in used]
    optimizer.apply_gradients(used)
    assert all(not np.allclose(b, w.numpy()) for b, (_, w) in zip(before, used, strict=True))
