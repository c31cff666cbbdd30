"""Cold start: a layer calls the saved trace of ``__call__`` directly, with the same result.

TensorFlow's restored ``__call__`` traces a dispatch wrapper on its first call; the layer
picks the trace that wrapper would pick and calls it, so nothing is traced, and falls back
to the wrapper whenever the choice is not plain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import hublayer as hub
from hublayer import testing
from hublayer.layers._fastcall import call_restored


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return testing.image_feature_vector(tmp_path_factory.mktemp("m") / "ifv", dim=4)


def images(batch: int = 2) -> tf.Tensor:
    return tf.constant(np.random.default_rng(0).random((batch, 32, 32, 3), dtype=np.float32))


@pytest.mark.parametrize("training", [False, True])
def test_the_direct_call_equals_the_restored_function_and_traces_nothing(
    folder: str, training: bool
) -> None:
    fast, slow, whole = (tf.saved_model.load(folder) for _ in range(3))
    x = images()
    got = call_restored(fast.__call__, (x,), {"training": training})
    again = call_restored(whole, (x,), {"training": training})  # the object, as layers hold it
    expected = slow(x, training=training)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    np.testing.assert_array_equal(again.numpy(), expected.numpy())
    assert fast.__call__.experimental_get_tracing_count() == 0
    assert whole.__call__.experimental_get_tracing_count() == 0
    assert slow.__call__.experimental_get_tracing_count() == 1


def test_inputs_that_need_a_conversion_take_the_usual_path(folder: str) -> None:
    model = tf.saved_model.load(folder)
    as_numpy = images().numpy()
    got = call_restored(model.__call__, (as_numpy,), {"training": False})
    np.testing.assert_allclose(got.numpy(), model(as_numpy, training=False).numpy())
    with pytest.raises((ValueError, TypeError)) as direct:
        call_restored(model.__call__, (tf.zeros([2, 8, 8, 3]),), {"training": False})
    with pytest.raises(type(direct.value)):
        model(tf.zeros([2, 8, 8, 3]), training=False)


def test_plain_callables_are_called_as_they_are() -> None:
    assert call_restored(lambda x, scale=1: x * scale, (3,), {"scale": 2}) == 6


def test_a_layer_gives_the_same_output_and_gradients_through_the_direct_path(
    folder: str, tmp_path: Path
) -> None:
    layer = hub.KerasLayer(folder, trainable=True)
    reference = tf.saved_model.load(folder)
    x = images(3)
    np.testing.assert_allclose(
        layer(x).numpy(), reference(x, training=False).numpy(), rtol=1e-6, atol=1e-6
    )
    assert layer.resolved_object.__call__.experimental_get_tracing_count() == 0
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=True) ** 2)
    grads = tape.gradient(loss, layer.trainable_weights)
    assert grads
    assert all(g is not None for g in grads)
