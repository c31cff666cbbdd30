"""Signature-only SavedModels, written the ways people make them today.

Most new models have no ``__call__``: Keras 3 ``model.export()``, ``tf.saved_model.save``
with only ``signatures=``, hand-written modules with ``serve`` and ``serve_train``
signatures, and converters such as onnx2tf (weights folded into constants, batch of 1).
:func:`signature_model` writes each of these from one small image model:
float32 ``[B, image_size, image_size, 3]`` -> Conv -> BatchNorm -> ReLU -> global average
-> Dense -> float32 ``[B, dim]``.

=================  ==========================================================================
``style``          what it writes
=================  ==========================================================================
``"export"``       ``keras.Model.export()``: signatures ``serve`` and ``serving_default``,
                   output ``"output_0"``, plus ``variables`` / ``trainable_variables``
``"signatures"``   ``tf.saved_model.save(model, path, signatures={"serving_default": f})``:
                   output ``"features"``; nothing lists the variables, only the function
                   captures them
``"serve_train"``  a ``tf.Module`` with signatures ``serve`` (inference) and ``serve_train``
                   (``training=True``: BatchNorm uses and updates batch statistics)
``"onnx2tf"``      like an onnx2tf conversion: signature ``serving_default`` with the
                   weights as constants (nothing to fine-tune), output ``"output_0"``
=================  ==========================================================================

``batch_size`` fixes the batch dimension of the signatures (``"onnx2tf"`` defaults to 1,
as onnx2tf does).

Example:
    >>> import tensorflow as tf
    >>> from hublayer import testing
    >>> path = testing.signature_model("/tmp/exported", style="export")
    >>> sorted(tf.saved_model.load(path).signatures)
    ['serve', 'serving_default']
"""

from __future__ import annotations

import os
from typing import Literal

import keras
import numpy as np
import tensorflow as tf

from hublayer.testing._archive import staged_path

__all__ = ["signature_model"]

Style = Literal["export", "signatures", "serve_train", "onnx2tf"]
_STYLES = ("export", "signatures", "serve_train", "onnx2tf")


def signature_model(
    path: str | os.PathLike[str],
    *,
    style: Style = "export",
    image_size: int = 8,
    dim: int = 4,
    batch_size: int | None = None,
    seed: int = 0,
    overwrite: bool = True,
) -> str:
    """Write a signature-only SavedModel (no ``__call__``) the way ``style`` names.

    Args:
        path: the folder to write.
        style: ``"export"``, ``"signatures"``, ``"serve_train"`` or ``"onnx2tf"`` (see the
            module docstring).
        image_size: height and width of the input images.
        dim: size of the output vector.
        batch_size: a fixed batch size for the signatures, or ``None`` for any;
            ``"onnx2tf"`` defaults to 1.
        seed: seeds the weights (``numpy.random.default_rng``).
        overwrite: replace an existing folder at ``path``.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: an unknown ``style``, or a size below 1.
        FileExistsError: ``path`` exists and ``overwrite`` is False.

    Example:
        >>> from hublayer import testing
        >>> testing.signature_model("/tmp/onnx", style="onnx2tf")  # doctest: +ELLIPSIS
        '/tmp/onnx'
    """
    if style not in _STYLES:
        raise ValueError(f"Expected style to be one of {list(_STYLES)}. Received: style={style!r}.")
    for name, value in (("image_size", image_size), ("dim", dim), ("batch_size", batch_size)):
        if value is not None and (isinstance(value, bool) or int(value) < 1):
            raise ValueError(f"Expected {name} >= 1. Received: {name}={value!r}.")
    if style == "onnx2tf" and batch_size is None:
        batch_size = 1
    model = _model(image_size, dim, seed)
    spec = tf.TensorSpec([batch_size, image_size, image_size, 3], tf.float32)
    with staged_path(path, overwrite=overwrite) as tmp:
        if style == "export":
            model.export(str(tmp), input_signature=[spec], verbose=False)
        elif style == "signatures":
            features = tf.function(lambda x: {"features": model(x, training=False)})
            serving = features.get_concrete_function(tf.TensorSpec.from_spec(spec, name="x"))
            tf.saved_model.save(model, str(tmp), signatures={"serving_default": serving})
        elif style == "serve_train":
            module = tf.Module()
            module.model = model
            module.serve = tf.function(
                lambda x: {"features": model(x, training=False)}, input_signature=[spec]
            )
            module.serve_train = tf.function(
                lambda x: {"features": model(x, training=True)}, input_signature=[spec]
            )
            signatures = {"serve": module.serve, "serve_train": module.serve_train}
            tf.saved_model.save(module, str(tmp), signatures=signatures)
        else:
            _save_with_constants(model, spec, str(tmp))
    return os.fspath(path)


def _model(image_size: int, dim: int, seed: int) -> keras.Model:
    rng = np.random.default_rng(seed)
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(dim, name="head")(x)
    model = keras.Model(inputs, outputs, name="signature_model")
    for weight in model.weights:
        if "moving_variance" in weight.path or "gamma" in weight.path:
            weight.assign(np.ones(weight.shape, "float32"))
        elif "moving_mean" in weight.path or "beta" in weight.path:
            weight.assign(np.zeros(weight.shape, "float32"))
        else:
            weight.assign(rng.normal(0.0, 0.5, weight.shape).astype("float32"))
    return model


def _save_with_constants(model: keras.Model, spec: tf.TensorSpec, path: str) -> None:
    """onnx2tf's shape: a ``tf.Module`` whose function holds the weights as constants."""
    weights = {w.path: w.numpy() for w in model.weights}
    kernel = tf.constant(weights["conv/kernel"])
    bias = tf.constant(weights["conv/bias"])
    head_kernel = tf.constant(weights["head/kernel"])
    head_bias = tf.constant(weights["head/bias"])
    epsilon = 1e-3
    scale = weights["bn/gamma"] / np.sqrt(weights["bn/moving_variance"] + epsilon)
    shift = weights["bn/beta"] - weights["bn/moving_mean"] * scale
    bn_scale, bn_shift = tf.constant(scale), tf.constant(shift)

    def serve(x: tf.Tensor) -> dict[str, tf.Tensor]:
        y = tf.nn.conv2d(x, kernel, strides=1, padding="SAME") + bias
        y = tf.nn.relu(y * bn_scale + bn_shift)
        y = tf.reduce_mean(y, axis=[1, 2])
        return {"output_0": tf.matmul(y, head_kernel) + head_bias}

    module = tf.Module()
    module.serve = tf.function(serve, input_signature=[tf.TensorSpec.from_spec(spec, name="x")])
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
