"""A records.dataset pipeline feeds a real model.fit through a hublayer.KerasLayer."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hublayer
from hublayer.records import Writer, dataset, encode_example

keras = pytest.importorskip("keras")


def _jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_pipeline_feeds_model_fit_with_a_keras_layer(tmp_path: Path) -> None:
    model_path = hublayer.testing.image_feature_vector(tmp_path / "model", image_size=32)
    layer = hublayer.KerasLayer(model_path)
    rng = np.random.default_rng(0)
    with Writer(tmp_path / "train", shards=2) as writer:
        for i in range(48):
            label = i % 2
            # 40x40 images: bright for class 1, dark for class 0; resized to 32 by the pipeline.
            pixels = rng.integers(0, 80, (40, 40, 3)) + 170 * label
            writer.write(encode_example({"image": _jpeg(pixels.astype(np.uint8)), "label": label}))

    train = dataset(writer.paths, batch_size=8, label="label", for_model=layer, seed=0)
    x_spec, y_spec = train.element_spec
    assert x_spec.shape.as_list() == [None, 32, 32, 3]
    assert y_spec.shape.as_list() == [None]

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), layer, keras.layers.Dense(2)])
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(train, epochs=4, verbose=0)
    assert len(history.history["loss"]) == 4
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9


def test_text_pipeline_feeds_a_text_model_described_by_inspect(tmp_path: Path) -> None:
    model_path = hublayer.testing.text_embedding(tmp_path / "nnlm", dim=8, num_buckets=64)
    words = {0: "awful bad sad", 1: "great good happy"}
    with Writer(tmp_path / "reviews.tfrecord") as writer:
        for i in range(32):
            writer.write(encode_example({"review": f"{words[i % 2]} {i}", "stars": i % 2}))

    info = hublayer.inspect(model_path)
    train = dataset(writer.paths, batch_size=8, label="stars", for_model=info, seed=0)
    x_spec, _ = train.element_spec
    assert (x_spec.dtype.name, x_spec.shape.as_list()) == ("string", [None])

    layer = hublayer.KerasLayer(model_path, trainable=True)
    inputs = keras.Input((), dtype="string")
    model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(train, epochs=3, verbose=0)
    assert history.history["accuracy"][-1] == 1.0
