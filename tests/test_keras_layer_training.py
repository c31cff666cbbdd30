"""KerasLayer fine-tuning: optimizers, a GradientTape reference step, BatchNorm, losses, partial.

About 35 s on 2 cores; the optimizer sweep is marked slow.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from _layer_models import IMAGE_SIZE, images, models

import hublayer as hub


def _classifier(layer: keras.Layer, classes: int = 3, seed: int = 0) -> keras.Model:
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    head = keras.layers.Dense(classes, kernel_initializer=keras.initializers.GlorotUniform(seed))
    return keras.Model(inputs, head(layer(inputs)))


def _targets(batch: int, classes: int = 3) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(batch, classes)).astype("float32")


def _snapshot(layer: keras.Layer) -> list[np.ndarray]:
    return [np.array(w.numpy()) for w in layer.weights]


def _moving_stats(layer: hub.KerasLayer) -> list[np.ndarray]:
    return [
        np.array(w.numpy())
        for w, path in zip(layer.weights, layer.variable_paths, strict=True)
        if "moving_" in path
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "optimizer",
    [
        lambda: keras.optimizers.Adam(1e-2),
        lambda: keras.optimizers.AdamW(1e-2),
        lambda: keras.optimizers.SGD(1e-1, momentum=0.9),
        lambda: keras.optimizers.RMSprop(1e-2),
        lambda: keras.optimizers.Adafactor(1e-1),
        lambda: keras.optimizers.Lion(1e-3),
    ],
    ids=["Adam", "AdamW", "SGD-momentum", "RMSprop", "Adafactor", "Lion"],
)
def test_every_builtin_optimizer_fine_tunes_the_layer(optimizer: object) -> None:
    layer = hub.KerasLayer(models()["image_feature_vector"], trainable=True)
    model = _classifier(layer)
    model.compile(optimizer=optimizer(), loss="mse")  # type: ignore[operator]
    before = _snapshot(layer)
    history = model.fit(images(8), _targets(8), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    changed = [not np.allclose(a, b) for a, b in zip(before, _snapshot(layer), strict=True)]
    trainable = [w.trainable for w in layer.weights]
    assert changed[: sum(trainable)] == [True] * sum(trainable)
    # Every optimizer slot variable got a valid, suffix-free name.
    assert all(":" not in v.path for v in model.optimizer.variables)


def test_one_fit_step_matches_a_hand_written_gradient_tape_step() -> None:
    path = models()["image_feature_vector"]
    x, y, rate = images(4), _targets(4), 0.05
    layer = hub.KerasLayer(path, trainable=True)
    model = _classifier(layer)
    head_kernel, head_bias = (np.array(w.numpy()) for w in model.layers[-1].weights)
    model.compile(optimizer=keras.optimizers.SGD(rate), loss="mse")
    model.train_on_batch(x, y)

    reference = hub.load(path)
    kernel, bias = tf.Variable(head_kernel), tf.Variable(head_bias)
    variables = [*reference.trainable_variables, kernel, bias]
    with tf.GradientTape() as tape:
        prediction = reference(x, training=True) @ kernel + bias
        loss = tf.reduce_mean(tf.square(prediction - y))
        loss += tf.add_n([r() for r in reference.regularization_losses])
    for variable, gradient in zip(variables, tape.gradient(loss, variables), strict=True):
        variable.assign_sub(rate * gradient)

    expected = [v.numpy() for v in reference.variables]
    got = {path: w.numpy() for path, w in zip(layer.variable_paths, layer.weights, strict=True)}
    for variable, value in zip(reference.variables, expected, strict=True):
        np.testing.assert_allclose(got[variable.name.removesuffix(":0")], value, atol=1e-5)
    np.testing.assert_allclose(model.layers[-1].kernel.numpy(), kernel.numpy(), atol=1e-5)
    np.testing.assert_allclose(model.layers[-1].bias.numpy(), bias.numpy(), atol=1e-5)


def test_feature_extraction_leaves_the_pretrained_weights_alone() -> None:
    layer = hub.KerasLayer(models()["image_feature_vector"])
    model = _classifier(layer)
    model.compile(optimizer="adam", loss="mse")
    before = _snapshot(layer)
    model.fit(images(8), _targets(8), batch_size=4, epochs=1, verbose=0)
    for a, b in zip(before, _snapshot(layer), strict=True):
        np.testing.assert_array_equal(a, b)
    assert layer.trainable_weights == []
    assert len(model.trainable_weights) == 2  # the head only


@pytest.mark.parametrize(
    ("trainable", "training", "moves"),
    [(False, True, False), (True, False, False), (True, True, True), (True, None, False)],
)
def test_training_reaches_the_model_only_while_the_layer_trains(
    trainable: bool, training: bool | None, moves: bool
) -> None:
    layer = hub.KerasLayer(models()["image_feature_vector"], trainable=trainable)
    before = _moving_stats(layer)
    outputs = layer(images(8), training=training)
    after = _moving_stats(layer)
    assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True)) == moves
    if not moves:  # inference mode: no dropout either
        np.testing.assert_allclose(outputs, layer(images(8), training=False), rtol=1e-6)


def test_symbolic_training_flag_picks_between_the_two_traced_functions() -> None:
    layer = hub.KerasLayer(models()["image_feature_vector"], trainable=True)
    x = images(8)

    @tf.function
    def run(flag: tf.Tensor) -> tf.Tensor:
        return layer(x, training=flag)

    np.testing.assert_allclose(run(tf.constant(False)), layer(x, training=False), rtol=1e-6)
    before = _moving_stats(layer)
    run(tf.constant(True))
    assert any(not np.allclose(a, b) for a, b in zip(before, _moving_stats(layer), strict=True))


def test_regularization_losses_count_only_while_trainable() -> None:
    path = models()["image_feature_vector"]
    layer = hub.KerasLayer(path, trainable=True)
    model = _classifier(layer)
    model(images(2))
    reference = hub.load(path)
    expected = sorted(float(r()) for r in reference.regularization_losses)
    assert expected
    assert all(e > 0 for e in expected)
    assert sorted(float(loss) for loss in model.losses) == pytest.approx(expected, rel=1e-6)
    layer.trainable = False
    model(images(2))
    # As in tensorflow_hub: one entry per loss, 0 while the layer is frozen.
    assert [float(loss) for loss in model.losses] == [0.0] * len(expected)


def test_trainable_patterns_unfreeze_only_matching_variables() -> None:
    layer = hub.KerasLayer(
        models()["image_feature_vector"], trainable=True, trainable_patterns=[r"^block_1_"]
    )
    trained = [p for p, w in zip(layer.variable_paths, layer.weights, strict=True) if w.trainable]
    assert trained == ["block_1_conv/kernel", "block_1_bn/gamma", "block_1_bn/beta"]
    model = _classifier(layer)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = dict(zip(layer.variable_paths, _snapshot(layer), strict=True))
    model.fit(images(8), _targets(8), batch_size=4, epochs=1, verbose=0)
    after = dict(zip(layer.variable_paths, _snapshot(layer), strict=True))
    for path in ("stem_conv/kernel", "stem_bn/gamma", "stem_bn/beta"):
        np.testing.assert_array_equal(before[path], after[path])
    for path in trained:
        assert not np.allclose(before[path], after[path])


def test_selection_survives_freezing_and_unfreezing() -> None:
    layer = hub.KerasLayer(models()["image_feature_vector"], trainable=True, trainable_last_n=1)
    assert [v.name for v in layer.trainable_weights] == ["block_1_bn_gamma", "block_1_bn_beta"]
    layer.trainable = False
    assert layer.trainable_weights == []
    layer.trainable = True
    assert [v.name for v in layer.trainable_weights] == ["block_1_bn_gamma", "block_1_bn_beta"]


def test_unfreeze_after_feature_extraction() -> None:
    layer = hub.KerasLayer(models()["image_feature_vector"])
    assert layer.trainable_weights == []
    layer.unfreeze(last_n=2)
    assert [p for p, w in zip(layer.variable_paths, layer.weights, strict=True) if w.trainable] == [
        "block_1_conv/kernel",
        "block_1_bn/gamma",
        "block_1_bn/beta",
    ]
    layer.unfreeze()
    assert len(layer.trainable_weights) == 6
    assert layer.get_config()["trainable"] is True
    # BatchNorm moving statistics are never trainable variables.
    assert not any("moving" in v.name for v in layer.trainable_weights)
