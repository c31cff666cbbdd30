"""A text embedding layer taking ``tf.string``, as a feature extractor and fine-tuned.

Adapted from "What is tfhub.KerasLayer?" (examples 1 and 2) and "How can Keras Layers
from TensorFlow Hub (v2) be used with tfrecords?" (example 2). Mistakes in the originals,
fixed here:

- ``input_shape=[]`` does not mean "a variable input length": it means each example is a
  single string (a scalar), so a batch is ``[batch]`` strings.
- The classifier's output came from ``softmax`` but was called "logits"; these are
  probabilities.
- The text pipeline split sentences into words (``tf.strings.split``) and wrapped the
  layer in a ``Lambda``: sentence encoders take whole sentences, and the Lambda hid the
  model's variables from Keras. The layer is used directly, on raw strings.

Run: ``python examples/text_embedding.py``
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import hublayer as hub
from hublayer import testing


def main(workdir: str | Path | None = None) -> dict[str, Any]:
    """Embed sentences, then train a small classifier with a frozen and a trainable layer."""
    workdir = Path(workdir or tempfile.mkdtemp())
    # Original: "https://tfhub.dev/google/nnlm-en-dim128/2"
    embedding_url = testing.text_embedding(workdir / "nnlm-en-dim128", dim=128)

    results: dict[str, Any] = {}
    for trainable in (False, True):
        embedding_layer = hub.KerasLayer(
            embedding_url, input_shape=[], dtype=tf.string, trainable=trainable
        )
        sentences = tf.constant(["This is a great sentence.", "Another one here!", "Short"])
        embeddings = embedding_layer(sentences)  # shape (3, 128)

        dense = keras.layers.Dense(128, activation="relu")
        output = keras.layers.Dense(2, activation="softmax")
        probabilities = output(dense(embeddings))  # shape (3, 2), probabilities

        model = keras.Sequential([embedding_layer, dense, output])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        texts = tf.constant(["good movie", "bad movie", "great film", "awful film"] * 4)
        labels = np.array([1, 0, 1, 0] * 4)
        before = embedding_layer.weights[0].numpy().copy()
        history = model.fit(texts, labels, epochs=3, batch_size=4, verbose=0)
        results["trainable" if trainable else "frozen"] = {
            "embeddings_shape": tuple(embeddings.shape),
            "probabilities": probabilities.numpy(),
            "model": model,
            "loss": history.history["loss"],
            "embedding_changed": not np.array_equal(before, embedding_layer.weights[0].numpy()),
        }
    return results


if __name__ == "__main__":
    for name, result in main().items():
        print(name, result["embeddings_shape"], "embedding changed:", result["embedding_changed"])
