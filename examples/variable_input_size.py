"""Images of any size, resized inside the model to the size the pretrained model expects.

Adapted from "How can I integrate a TensorHub model into a Keras model?" (example 3).
Mistakes in the original, fixed here:

- ``tf.image.resize(inputs, ...)`` on a ``keras.Input`` fails on Keras 3 ("A KerasTensor
  cannot be used as input to a TensorFlow function"); ``keras.layers.Resizing`` does the
  same inside the model, and is saved with it.
- ``Dense(2, activation="sigmoid")`` for a binary classifier: one sigmoid unit with
  ``binary_crossentropy`` is the binary classifier (two units would need softmax).

Run: ``python examples/variable_input_size.py``
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

import hublayer as hub
from hublayer import testing


def main(workdir: str | Path | None = None) -> dict[str, Any]:
    """Build the model, feed it two image sizes, train a little, save and reload it."""
    workdir = Path(workdir or tempfile.mkdtemp())
    # Original: "https://tfhub.dev/tensorflow/efficientnet/b0/feature-vector/1" (224x224)
    handle = testing.image_feature_vector(workdir / "efficientnet_b0_feature_vector", image_size=64)
    efficientnet_model = hub.KerasLayer(handle, trainable=True)
    _, height, width, _ = efficientnet_model.input_specs[0].shape

    inputs = keras.Input(shape=(None, None, 3))  # any height and width
    resized_input = keras.layers.Resizing(height, width)(inputs)
    features = efficientnet_model(resized_input)
    outputs = keras.layers.Dense(1, activation="sigmoid")(features)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy")

    rng = np.random.default_rng(0)
    small = rng.random((4, 48, 40, 3), dtype=np.float32)
    large = rng.random((4, 120, 160, 3), dtype=np.float32)
    predictions = {
        "small": model.predict(small, verbose=0),
        "large": model.predict(large, verbose=0),
    }
    model.fit(large, np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    model.save(workdir / "any_size_classifier.keras")
    reloaded = keras.models.load_model(workdir / "any_size_classifier.keras")
    return {"model": model, "reloaded": reloaded, "predictions": predictions, "inputs": large}


if __name__ == "__main__":
    result = main()
    print({name: p.shape for name, p in result["predictions"].items()})
