"""KerasLayer under mixed precision: inputs cast to the model's dtype, outputs to the policy's.

About 15 s on 2 cores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from _layer_models import IMAGE_SIZE, images, models

import hublayer as hub

POLICIES = ["mixed_float16", "mixed_bfloat16"]


@pytest.fixture
def policy(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    keras.mixed_precision.set_global_policy(name)
    try:
        yield name
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _compute_dtype(policy: str) -> str:
    return policy.removeprefix("mixed_")


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
def test_outputs_take_the_policy_dtype_and_stay_close(policy: str) -> None:
    reference = hub.load(models()["image_feature_vector"])(images(), training=False).numpy()
    layer = hub.KerasLayer(models()["image_feature_vector"])
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    assert layer(inputs).dtype == _compute_dtype(policy)
    for x in (images(), tf.cast(images(), _compute_dtype(policy))):  # float32 or half inputs
        out = layer(x)
        assert out.dtype == _compute_dtype(policy)
        np.testing.assert_allclose(tf.cast(out, tf.float32), reference, atol=0.05, rtol=0.05)
    # The variables stay float32, as the SavedModel has them.
    assert {w.dtype for w in layer.weights if "seed" not in w.name} == {"float32"}


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
def test_fine_tuning_and_saving_under_a_mixed_policy(policy: str, tmp_path: Path) -> None:
    layer = hub.KerasLayer(models()["image_feature_vector"], trainable=True)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    outputs = keras.layers.Dense(3, dtype="float32")(layer(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = layer.trainable_weights[0].numpy().copy()
    model.fit(images(8), np.ones((8, 3), "float32"), batch_size=4, epochs=1, verbose=0)
    assert not np.allclose(before, layer.trainable_weights[0].numpy())
    model.save(tmp_path / "mixed.keras")
    reloaded = keras.models.load_model(tmp_path / "mixed.keras")
    np.testing.assert_allclose(reloaded(images()), model(images()), rtol=1e-6)


def test_policy_on_the_layer_only() -> None:
    layer = hub.KerasLayer(models()["text_embedding"], dtype="mixed_bfloat16")
    assert layer.compute_dtype == "bfloat16"
    assert layer(tf.constant(["a cat"])).dtype == tf.bfloat16
    # A float32 layer adds no cast at all.
    plain = hub.KerasLayer(models()["text_embedding"])
    assert plain(tf.constant(["a cat"])).dtype == tf.float32
