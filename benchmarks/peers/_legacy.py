"""The ``tensorflow_hub`` + ``tf_keras`` peers, as :class:`~benchmarks._subprocess.Worker` targets.

Import this only in a worker started with ``TF_USE_LEGACY_KERAS=1`` (:data:`LEGACY_ENV`):
there ``tf.keras`` is ``tf_keras`` (Keras 2), which ``hub.KerasLayer`` needs. Each
function builds what it measures once and returns the operation to time; the worker
calls it once per sample.

The hand-written GradientTape step lives here too: it is the classic TF2 loop
(``tf.saved_model.load``, a ``tf.Variable`` head, ``tf.keras.optimizers.Adam`` in a
``tf.function``), and Keras 2's Adam is the one that takes raw ``tf.Variable`` s.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks._data import image_batch

__all__ = [
    "construct_hub",
    "fit_hub",
    "import_hub",
    "finetune_hub",
    "finetune_tape",
    "forward_hub",
    "resolve_hub",
]


def _tf() -> Any:
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise RuntimeError("benchmarks.peers._legacy needs TF_USE_LEGACY_KERAS=1 (a Worker env)")
    import tensorflow as tf

    return tf


def import_hub() -> Any:
    """Import ``tensorflow_hub`` (0.16 imports ``pkg_resources``: the ``[bench]`` extra pins
    ``setuptools<81``, which still ships it)."""
    import tensorflow_hub

    return tensorflow_hub


def _labels(batch: int, classes: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, classes, size=batch)


def forward_hub(model: str, batch: int = 32, size: int = 224) -> Callable[[], Any]:
    """``hub.KerasLayer(model)`` called on one batch (inference)."""
    tf = _tf()
    hub = import_hub()

    layer = hub.KerasLayer(model)
    x = tf.constant(image_batch(batch, size))
    return lambda: layer(x).numpy()


def finetune_hub(
    model: str, batch: int = 32, size: int = 224, classes: int = 10, seed: int = 0
) -> Callable[[], Any]:
    """One ``train_on_batch`` step of ``Sequential([hub.KerasLayer(trainable=True), Dense])``."""
    tf = _tf()
    hub = import_hub()

    tf.keras.utils.set_random_seed(seed)
    net = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(size, size, 3)),
            hub.KerasLayer(model, trainable=True),
            tf.keras.layers.Dense(classes),
        ]
    )
    net.compile(
        optimizer=tf.keras.optimizers.Adam(1e-3),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = tf.constant(image_batch(batch, size)), tf.constant(_labels(batch, classes, seed))
    return lambda: {"loss": float(net.train_on_batch(x, y))}


def finetune_tape(
    model: str, batch: int = 32, size: int = 224, classes: int = 10, seed: int = 0
) -> Callable[[], Any]:
    """A hand-written step: SavedModel + Dense head, GradientTape and Adam in a tf.function."""
    tf = _tf()
    tf.random.set_seed(seed)
    loaded = tf.saved_model.load(model)
    x, y = tf.constant(image_batch(batch, size)), tf.constant(_labels(batch, classes, seed))
    dim = int(loaded(x[:1], training=False).shape[-1])
    kernel = tf.Variable(tf.random.normal([dim, classes], stddev=dim**-0.5), name="head_kernel")
    bias = tf.Variable(tf.zeros([classes]), name="head_bias")
    variables = [*loaded.trainable_variables, kernel, bias]
    optimizer = tf.keras.optimizers.Adam(1e-3)
    reg_losses = list(getattr(loaded, "regularization_losses", []))

    @tf.function  # type: ignore[untyped-decorator]
    def step(images: Any, labels: Any) -> Any:
        with tf.GradientTape() as tape:
            features = loaded(images, training=True)
            logits = tf.matmul(features, kernel) + bias
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            )
            if reg_losses:
                loss += tf.add_n([fn() for fn in reg_losses])
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    return lambda: {"loss": float(step(x, y))}


def construct_hub(handle: str, cache_dir: str) -> Callable[[], Any]:
    """``hub.KerasLayer(handle)`` on a handle already in ``cache_dir`` (construction only)."""
    _tf()
    os.environ["TFHUB_CACHE_DIR"] = cache_dir
    hub = import_hub()

    hub.resolve(handle)  # fills the cache before timing starts
    return lambda: hub.KerasLayer(handle)


def resolve_hub(handle: str, cache_dir: str) -> Callable[[], Any]:
    """``tensorflow_hub.resolve(handle)`` once the handle is in ``cache_dir``."""
    _tf()
    os.environ["TFHUB_CACHE_DIR"] = cache_dir
    hub = import_hub()

    hub.resolve(handle)  # download and unpack once, untimed
    return lambda: hub.resolve(handle)


def fit_hub(
    model: str,
    train: list[str],
    validation: list[str],
    size: int,
    epochs: int = 10,
    seed: int = 0,
    classes: int = 10,
) -> Callable[[], Any]:
    """The TF Hub tutorials' feature extraction: a frozen ``hub.KerasLayer`` and ``fit``.

    The pipeline decodes and resizes once and keeps the images in memory (``cache()``), as
    the tutorials do, so each epoch after the first runs the backbone only.
    """
    tf = _tf()
    hub = import_hub()
    features = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
    }

    def parse(serialized: Any) -> Any:
        ex = tf.io.parse_single_example(serialized, features)
        image = tf.image.resize(tf.io.decode_jpeg(ex["image"], channels=3), [size, size])
        return image / 255.0, ex["label"]

    def pipeline(files: list[str], shuffle: bool) -> Any:
        ds = tf.data.TFRecordDataset(files).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.cache()
        if shuffle:
            ds = ds.shuffle(1024, seed=seed)
        return ds.batch(32).prefetch(tf.data.AUTOTUNE)

    def run() -> dict[str, Any]:
        tf.keras.utils.set_random_seed(seed)
        net = tf.keras.Sequential(
            [
                tf.keras.Input(shape=(size, size, 3)),
                hub.KerasLayer(model, trainable=False),
                tf.keras.layers.Dropout(0.2),
                tf.keras.layers.Dense(classes, activation="softmax"),
            ]
        )
        net.compile(
            optimizer=tf.keras.optimizers.Adam(1e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        val = pipeline(validation, shuffle=False)
        history = net.fit(pipeline(train, shuffle=True), epochs=epochs, verbose=0)
        _, accuracy = net.evaluate(val, verbose=0)
        return {"val_accuracy": float(accuracy), "epochs_run": len(history.history["loss"])}

    return run
