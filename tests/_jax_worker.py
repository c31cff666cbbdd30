"""Run the same KerasLayer checks on whichever Keras backend the process was started with.

``tests/test_keras_layer_jax.py`` runs this file twice, with ``KERAS_BACKEND=tensorflow``
and ``KERAS_BACKEND=jax`` (the backend is fixed at import), and compares what both wrote.

Usage: ``python tests/_jax_worker.py MODELS_DIR OUT_DIR``. ``MODELS_DIR`` holds the models
the test built (``ifv``, ``cls``, ``bert``, ``text``, ``reg``, ``fixed``, ``inputs.npz``);
``OUT_DIR`` gets ``results.npz`` (arrays) and ``results.json`` (flags and messages).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import hublayer as hub
from hublayer.errors import BackendError

BACKEND = keras.backend.backend()


def weights(layer: keras.Layer) -> list[np.ndarray]:
    return [np.array(keras.ops.convert_to_numpy(w)) for w in layer.weights]


def head(units: int, width: int, seed: int) -> keras.layers.Dense:
    dense = keras.layers.Dense(units, name="head")
    dense.build((None, width))
    rng = np.random.default_rng(seed)
    dense.set_weights([rng.uniform(-0.5, 0.5, (width, units)).astype("float32"), np.zeros(units)])
    return dense


class InferenceMode(keras.Model):
    """Fine-tunes a layer called with training=False (the classifier and BERT models have
    Dropout, whose random numbers differ between TensorFlow and JAX)."""

    def __init__(self, layer: keras.Layer, dense: keras.Layer) -> None:
        super().__init__()
        self.layer, self.dense = layer, dense

    def call(self, x: Any, training: bool = False) -> Any:
        return self.dense(self.layer(x, training=False))


def one_step(make_layer: Any, x: Any, width: int, optimizer: Any, inference: bool) -> list[Any]:
    layer = make_layer()
    dense = head(2, width, seed=1)
    if inference:
        model: keras.Model = InferenceMode(layer, dense)
    else:
        model = keras.Sequential([layer, dense])
    model.compile(optimizer=optimizer, loss="mse")
    y = np.tile(np.asarray([[1.0, -1.0]], "float32"), (batch(x), 1))
    model.train_on_batch(x, y)
    return weights(layer)


def dense_adam_step(make_layer: Any, x: Any, width: int, optimizer: Any) -> Any:
    """``one_step`` (inference mode) on TensorFlow, with every gradient made dense first.

    Returns the weights after the step, and for each weight whose gradient TensorFlow
    hands over as ``IndexedSlices`` (an embedding lookup), how often each row was looked up.
    """
    layer = make_layer()
    model = InferenceMode(layer, head(2, width, seed=1))
    y = np.tile(np.asarray([[1.0, -1.0]], "float32"), (batch(x), 1))
    model(x)
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(y, model(x, training=True))
    variables = model.trainable_variables
    gradients = tape.gradient(loss, [v.value for v in variables])
    position = {id(w.value): i for i, w in enumerate(layer.weights)}
    lookups: dict[str, list[int]] = {}
    for variable, gradient in zip(variables, gradients, strict=True):
        if isinstance(gradient, tf.IndexedSlices) and id(variable.value) in position:
            rows = int(variable.shape[0])
            counts = np.bincount(gradient.indices.numpy(), minlength=rows)
            lookups[str(position[id(variable.value)])] = counts.tolist()
    dense = [tf.convert_to_tensor(g) for g in gradients]
    optimizer.apply_gradients(zip(dense, variables, strict=True))
    return weights(layer), lookups


def batch(x: Any) -> int:
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def main(models: Path, out: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    flags: dict[str, Any] = {"backend": BACKEND}
    data = np.load(models / "inputs.npz")
    images = data["images"]
    ids = data["ids"]
    text = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": 0 * ids}

    # Forward parity, batch 1 and 7, every factory image and BERT-like model.
    for name, feed in (("ifv", images), ("cls", images), ("bert", text)):
        layer = hub.KerasLayer(str(models / name))
        flags[f"{name}/class"] = f"{type(layer).__module__}.{type(layer).__name__}"
        flags[f"{name}/runner"] = type(layer._runner).__name__
        flags[f"{name}/isinstance"] = isinstance(layer, hub.KerasLayer)
        for size in (1, 7):
            sliced = (
                {k: v[:size] for k, v in feed.items()} if isinstance(feed, dict) else feed[:size]
            )
            result = layer(sliced)
            for key, value in result.items() if isinstance(result, dict) else [("out", result)]:
                arrays[f"{name}/{key}/b{size}"] = np.asarray(keras.ops.convert_to_numpy(value))

    # A model built and compiled on batch 4 predicts batch 1 and 7.
    model = keras.Sequential([keras.Input((32, 32, 3)), hub.KerasLayer(str(models / "ifv"))])
    arrays["predict/b7"] = model.predict(images, batch_size=4, verbose=0)
    arrays["predict/b1"] = model.predict(images[:1], verbose=0)

    # A model traced for batches of exactly 1 predicts batches of 7 (slices of 1).
    model = keras.Sequential([keras.Input((4,)), hub.KerasLayer(str(models / "fixed"))])
    arrays["fixed/predict"] = model.predict(images.reshape(7, -1)[:, :4], batch_size=5, verbose=0)

    # A .keras file as the handle: the layer wraps the Keras model it holds.
    wrapped = hub.KerasLayer(str(models / "inner.keras"), trainable=True)
    small = images.reshape(7, -1)[:, :4]
    arrays["keras/out"] = np.asarray(keras.ops.convert_to_numpy(wrapped(small)))
    flags["keras/trainable"] = len(wrapped.trainable_weights)
    model = keras.Sequential([keras.Input((4,)), wrapped])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.train_on_batch(small, np.zeros((7, 3), "float32"))
    arrays["keras/step"] = model.predict(small, verbose=0)

    # One fine-tuning step with Adam and SGD: every weight after the step.
    cases: tuple[tuple[str, Any, int, bool, dict[str, Any]], ...] = (
        ("ifv", images, 16, False, {}),
        ("cls", images, 5, True, {}),
        ("bert", text, 16, True, {"output_key": "pooled_output"}),
    )
    for name, feed, width, inference, extra in cases:
        fresh = hub.KerasLayer(str(models / name), **extra)
        flags[f"paths/{name}"] = list(fresh.variable_paths)
        initial = weights(fresh)
        for i, value in enumerate(initial):
            arrays[f"step/{name}/init/{i}"] = value
        for opt_name, make_opt in (
            # epsilon=1e-3: Adam turns float-noise gradients (1e-9 on both backends, of
            # either sign) into full steps of size lr with the default 1e-7.
            ("adam", lambda: keras.optimizers.Adam(1e-2, epsilon=1e-3)),
            ("sgd", lambda: keras.optimizers.SGD(0.1)),
        ):
            path = str(models / name)
            after = one_step(
                lambda path=path, extra=extra: hub.KerasLayer(path, trainable=True, **extra),
                feed,
                width,
                make_opt(),
                inference,
            )
            for i, value in enumerate(after):
                arrays[f"step/{name}/{opt_name}/{i}"] = value
        if name == "bert" and BACKEND == "tensorflow":
            # The reference for JAX's Adam: the same step with dense gradients.
            after, lookups = dense_adam_step(
                lambda path=path, extra=extra: hub.KerasLayer(path, trainable=True, **extra),
                feed,
                width,
                keras.optimizers.Adam(1e-2, epsilon=1e-3),
            )
            for i, value in enumerate(after):
                arrays[f"step/{name}/adam-dense/{i}"] = value
            flags[f"lookups/{name}"] = lookups

    # Frozen weights never move; BatchNorm statistics move only in training.
    frozen = hub.KerasLayer(str(models / "ifv"), trainable=False)
    before = weights(frozen)
    model = keras.Sequential([keras.Input((32, 32, 3)), frozen, head(2, 16, 2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(images, np.ones((7, 2)), epochs=2, batch_size=4, verbose=0)
    flags["frozen/moved"] = [
        not np.array_equal(a, b) for a, b in zip(before, weights(frozen), strict=True)
    ]
    tuned = hub.KerasLayer(str(models / "ifv"), trainable=True)
    paths = tuned.variable_paths
    model = keras.Sequential([keras.Input((32, 32, 3)), tuned, head(2, 16, 2)])
    model.compile(optimizer="adam", loss="mse")
    before = weights(tuned)
    model.predict(images, verbose=0)
    model.evaluate(images, np.ones((7, 2)), verbose=0)
    flags["inference/moved"] = [
        not np.array_equal(a, b) for a, b in zip(before, weights(tuned), strict=True)
    ]
    model.fit(images, np.ones((7, 2)), epochs=1, batch_size=7, verbose=0)
    flags["training/moved"] = {
        p: not np.array_equal(a, b) for p, a, b in zip(paths, before, weights(tuned), strict=True)
    }
    flags["trainable_count"] = len(tuned.trainable_weights)
    trainable_ids = {id(w) for w in tuned.trainable_weights}
    flags["training/trainable_moved"] = [
        not np.array_equal(a, b)
        for w, a, b in zip(tuned.weights, before, weights(tuned), strict=True)
        if id(w) in trainable_ids
    ]
    saved = tf.saved_model.load(str(models / "ifv"))
    flags["model_trainable_count"] = len(saved.trainable_variables)

    # Regularization losses: in layer.losses before any call (0 while frozen), and their
    # gradients reach the variables in fit (a data loss of 0 leaves only them).
    reg = hub.KerasLayer(str(models / "reg"), trainable=True)
    flags["losses/trainable"] = [float(keras.ops.convert_to_numpy(x)) for x in reg.losses]
    reg.trainable = False
    flags["losses/frozen"] = [float(keras.ops.convert_to_numpy(x)) for x in reg.losses]
    reg.trainable = True
    model = keras.Sequential([keras.Input((32, 32, 3)), reg, head(2, 16, 2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=lambda y, p: 0.0 * keras.ops.sum(p))
    before = weights(reg)
    model.train_on_batch(images, np.ones((7, 2)))
    for i, value in enumerate(weights(reg)):
        arrays[f"reg/before/{i}"], arrays[f"reg/after/{i}"] = before[i], value
    flags["reg/paths"] = list(reg.variable_paths)

    # .keras round trip: self-contained (the model folder is gone when it reloads).
    copy = out / "ifv_copy"
    shutil.copytree(models / "ifv", copy)
    layer = hub.KerasLayer(str(copy), trainable=True)
    model = keras.Sequential([keras.Input((32, 32, 3)), layer, head(2, 16, 3)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(images, np.ones((7, 2)), epochs=2, batch_size=4, verbose=0)
    expected = model.predict(images, verbose=0)
    model.save(out / f"{BACKEND}.keras")
    shutil.rmtree(copy)
    loaded = keras.models.load_model(out / f"{BACKEND}.keras")
    arrays["roundtrip/expected"] = expected
    arrays["roundtrip/loaded"] = loaded.predict(images, verbose=0)
    flags["roundtrip/same_weights"] = all(
        np.array_equal(a, b) for a, b in zip(weights(layer), weights(loaded.layers[0]), strict=True)
    )
    other = "tensorflow" if BACKEND == "jax" else "jax"
    if (out.parent / other / f"{other}.keras").exists():  # written by the other backend
        loaded = keras.models.load_model(out.parent / other / f"{other}.keras")
        arrays["crossload"] = loaded.predict(images, verbose=0)

    # Unsupported ops fail at construction, naming them.
    try:
        hub.KerasLayer(str(models / "text"))
        flags["text/error"] = None
    except BackendError as error:
        flags["text/error"] = str(error)

    np.savez(out / "results.npz", **arrays)  # type: ignore[arg-type]
    (out / "results.json").write_text(json.dumps(flags, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
