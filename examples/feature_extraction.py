"""Feature extraction: a Dense classifier on a frozen image feature vector, fed from TFRecords.

Adapted from "How can Keras Layers from TensorFlow Hub (v2) be used with tfrecords?"
(example 1) and "How can I integrate a TensorHub model into a Keras model?" (example 1).
The only change to the layer code is the import (``import hublayer as hub``) and a local
handle in place of the tfhub.dev URL. Mistakes in the originals, fixed here:

- ``tf.image.convert_image_dtype`` was called *after* ``tf.image.resize``: resize already
  returns float32 in [0, 255], and convert_image_dtype does not rescale floats, so the
  model got pixels 255 times too large. Images are converted to [0, 1] first.
- The images were resized to 224 for InceptionV3, whose input is 299x299. The size is
  read from the layer (``layer.input_specs``) instead of being hard-coded.
- ``categorical_crossentropy`` was used with integer labels; ``sparse_...`` is the one
  for class ids.
- ``tf.keras.Sequential([hub.KerasLayer(...)])`` fails on Keras 3 with "Only instances of
  `keras.Layer` can be added to a Sequential model"; ``hublayer.KerasLayer`` is one.

Run: ``python examples/feature_extraction.py``
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

NUM_CLASSES = 10


def write_tfrecords(path: Path, count: int, seed: int = 0) -> str:
    """A small TFRecord file of JPEG images and integer labels, as the example reads."""
    rng = np.random.default_rng(seed)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for _ in range(count):
            label = int(rng.integers(NUM_CLASSES))
            pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
            pixels[..., label % 3] = 255  # make the label visible in the image
            feature = {
                "image": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[tf.io.encode_jpeg(pixels).numpy()])
                ),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    return str(path)


def main(workdir: str | Path | None = None) -> dict[str, Any]:
    """Train the classifier; return its history, the layer and the model."""
    workdir = Path(workdir or tempfile.mkdtemp())
    # Original: "https://tfhub.dev/google/tf2-preview/inception_v3/feature_vector/4"
    handle = testing.image_feature_vector(workdir / "inception_v3_feature_vector", image_size=75)

    feature_extractor = hub.KerasLayer(handle, trainable=False)
    _, height, width, _ = feature_extractor.input_specs[0].shape

    def parse_tfrecord(example_proto: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        feature_description = {
            "image": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64),
        }
        example = tf.io.parse_single_example(example_proto, feature_description)
        image = tf.io.decode_jpeg(example["image"], channels=3)
        image = tf.image.convert_image_dtype(image, tf.float32)  # [0, 1], before resizing
        image = tf.image.resize(image, [height, width])
        label = tf.cast(example["label"], tf.int32)
        return image, label

    filenames = [write_tfrecords(workdir / "train.tfrecord", 64)]
    dataset = tf.data.TFRecordDataset(filenames).map(parse_tfrecord)
    dataset = dataset.shuffle(64, seed=0).batch(16).prefetch(tf.data.AUTOTUNE)

    model = keras.Sequential(
        [
            keras.Input((height, width, 3)),
            feature_extractor,
            keras.layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(dataset, epochs=3, verbose=0)
    return {"history": history.history, "layer": feature_extractor, "model": model}


if __name__ == "__main__":
    result = main()
    print("loss per epoch:", [round(v, 4) for v in result["history"]["loss"]])
