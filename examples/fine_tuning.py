"""Fine-tuning a pretrained image model with ``trainable=True``, all of it or its last blocks.

Adapted from "How can I integrate a TensorHub model into a Keras model?" (example 2).
Mistakes in the original, fixed here:

- It loaded the model with ``trainable=True`` and then set ``inception_model.trainable =
  False`` and unfroze ``model.layers[-3:]``: those are the new head (Dense, Dropout,
  Dense), so nothing pretrained was fine-tuned. To fine-tune only the top of the
  pretrained model, hublayer offers ``trainable_last_n`` / ``trainable_patterns`` (or
  ``layer.unfreeze(last_n=...)``), without editing the SavedModel (tensorflow/hub#247).
- ``model.fit(..., learning_rate=0.0001)``: ``fit`` has no such argument (TypeError). The
  small learning rate belongs to the optimizer.
- ``categorical_crossentropy`` needs one-hot labels; the labels here are one-hot.

Run: ``python examples/fine_tuning.py``
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

import hublayer as hub
from hublayer import testing

NUM_CLASSES = 5


def main(workdir: str | Path | None = None) -> dict[str, Any]:
    """Fine-tune twice (whole model, then its last block); return weights before and after."""
    workdir = Path(workdir or tempfile.mkdtemp())
    # Original: "https://tfhub.dev/google/imagenet/inception_v3/feature_vector/4" (299x299)
    handle = testing.image_feature_vector(workdir / "inception_v3_feature_vector", image_size=75)
    rng = np.random.default_rng(0)
    x_train = rng.random((32, 75, 75, 3), dtype=np.float32)
    y_train = keras.utils.to_categorical(rng.integers(NUM_CLASSES, size=32), NUM_CLASSES)

    results: dict[str, Any] = {}
    # "last_block": only the variables of the last 2 layers train (block_1's conv and
    # BatchNorm); layer.variable_paths lists the names to pick from.
    choices: tuple[tuple[str, dict[str, Any]], ...] = (
        ("whole", {}),
        ("last_block", {"trainable_last_n": 2}),
    )
    for name, kwargs in choices:
        inception_model = hub.KerasLayer(handle, trainable=True, **kwargs)
        inputs = keras.Input((75, 75, 3))
        x = inception_model(inputs)
        x = keras.layers.Dense(128, activation="relu")(x)
        x = keras.layers.Dropout(0.5)(x)
        outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
        model = keras.Model(inputs=inputs, outputs=outputs)

        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=1e-4),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        before = [w.numpy().copy() for w in inception_model.weights]
        model.fit(x_train, y_train, epochs=2, batch_size=8, verbose=0)
        after = [w.numpy() for w in inception_model.weights]
        results[name] = {
            "layer": inception_model,
            "model": model,
            "changed": [
                path
                for path, a, b in zip(inception_model.variable_paths, before, after, strict=True)
                if not np.array_equal(a, b)
            ],
        }
    return results


if __name__ == "__main__":
    for name, result in main().items():
        print(f"{name}: {len(result['changed'])} pretrained variables changed")
