"""KerasLayer under tf.distribute.MirroredStrategy on two logical CPU devices.

Logical devices must be configured before TensorFlow initializes, so the check runs in a
fresh process. About 25 s on 2 cores (marked slow).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _layer_models import models

from hublayer import testing

SCRIPT = textwrap.dedent(
    """
    import sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    import numpy as np
    import hublayer as hub

    import json

    handle, folder = sys.argv[1], sys.argv[2]
    extra = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    rng = np.random.default_rng(0)
    x = rng.random((8, 32, 32, 3), dtype=np.float32)
    y = rng.normal(size=(8, 3)).astype("float32")
    for trainable in (False, True):
        with strategy.scope():
            layer = hub.KerasLayer(handle, trainable=trainable, **extra)
            inputs = keras.Input((32, 32, 3))
            model = keras.Model(inputs, keras.layers.Dense(3)(layer(inputs)))
            model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
        before = [w.numpy().copy() for w in layer.weights]
        model.fit(x, y, batch_size=4, epochs=2, verbose=0)
        changed = [not np.allclose(a, w.numpy()) for a, w in zip(before, layer.weights)]
        assert any(changed) == trainable, changed
        # Both replicas hold the same values, BatchNorm statistics included.
        for w in layer.weights:
            first, second = (v.numpy() for v in w.value.values)
            np.testing.assert_array_equal(first, second, err_msg=w.name)
        path = f"{folder}/model_{trainable}.keras"
        model.save(path)
        expected = model.predict(x, verbose=0)
        plain = keras.models.load_model(path)  # outside the strategy
        np.testing.assert_allclose(plain.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
        with strategy.scope():
            again = keras.models.load_model(path)
        np.testing.assert_allclose(again.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    print("DISTRIBUTED OK")
    """
)


@pytest.mark.slow
def test_feature_extraction_and_fine_tuning_under_mirrored_strategy(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, models()["image_feature_vector"], str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert "DISTRIBUTED OK" in done.stdout, done.stderr[-4000:]


@pytest.mark.slow
def test_signature_model_fine_tunes_under_mirrored_strategy(tmp_path: Path) -> None:
    """A module with serve / serve_train signatures: BatchNorm statistics stay in sync."""
    handle = testing.signature_model(tmp_path / "sig", style="serve_train", image_size=32)
    extra = '{"signature": "serve", "training_signature": "serve_train"}'
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, handle, str(tmp_path), extra],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert "DISTRIBUTED OK" in done.stdout, done.stderr[-4000:]
