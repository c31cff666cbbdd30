"""Dtype adapters between Keras and a SavedModel whose dtypes were fixed when it was saved.

Under a mixed precision policy (``mixed_float16``, ``mixed_bfloat16``) Keras feeds float16
or bfloat16 tensors, while a SavedModel traced in float32 only has float32 functions
("Could not find matching function to call", tensorflow/hub#748, #854). The layer casts
inputs to the dtype the model expects and float outputs to its own compute dtype. Nothing
is cast when the dtypes already match, so a float32 model in a float32 policy pays nothing.

Example:
    >>> import tensorflow as tf
    >>> cast_input(tf.ones([2], tf.float16), tf.float32).dtype
    tf.float32
    >>> output_dtype(tf.float32, "float16")
    tf.float16
    >>> output_dtype(tf.int64, "float16")
    tf.int64
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

__all__ = ["cast_input", "cast_outputs", "output_dtype", "split_dtype"]


def cast_input(x: Any, dtype: tf.DType) -> Any:
    """Cast a tensor (or a Keras symbolic tensor) to ``dtype``."""
    if isinstance(x, keras.KerasTensor):
        return keras.KerasTensor(x.shape, dtype=dtype.name, name=x.name)
    return tf.cast(x, dtype)


def output_dtype(model_dtype: Any, compute_dtype: str | None) -> tf.DType:
    """The dtype the layer returns for a model output of ``model_dtype``.

    Float outputs take the layer's compute dtype when that is a float type; everything
    else (ints, strings, a non-float policy) keeps the model's dtype.
    """
    model_dtype = tf.as_dtype(model_dtype)
    if compute_dtype is None or not model_dtype.is_floating:
        return model_dtype
    target = tf.as_dtype(compute_dtype)
    return target if target.is_floating else model_dtype


def cast_outputs(outputs: Any, compute_dtype: str | None) -> Any:
    """Cast every float output to the layer's compute dtype (no-op where they match).

    TensorFlow tensors (ragged and sparse ones too) go through ``tf.cast``; the arrays of
    another backend (JAX) through ``keras.ops.cast``.
    """

    def cast(x: Any) -> Any:
        if not hasattr(x, "dtype"):
            return x
        dtype = tf.as_dtype(x.dtype)
        target = output_dtype(dtype, compute_dtype)
        if target == dtype:
            return x
        return tf.cast(x, target) if tf.is_tensor(x) else keras.ops.cast(x, target.name)

    return tf.nest.map_structure(cast, outputs)


def split_dtype(dtype: Any) -> tuple[Any, str | None]:
    """Split TF Hub's ``dtype=tf.string`` (an input dtype) from a Keras dtype policy.

    ``tensorflow_hub`` examples pass ``dtype=tf.string`` (or ``tf.int32``) with
    ``input_shape`` to declare a text model's input. A float dtype or a policy name such
    as ``"mixed_float16"`` is the layer's Keras dtype policy, as for any layer.

    Returns:
        ``(policy, input_dtype)``: what to give ``keras.layers.Layer(dtype=...)``, and the
        declared non-float input dtype name or ``None``.

    Example:
        >>> split_dtype(tf.string)
        ('string', 'string')
        >>> split_dtype("mixed_float16")
        ('mixed_float16', None)
    """
    if dtype is None:
        return None, None
    if isinstance(dtype, keras.DTypePolicy):
        name: Any = dtype.compute_dtype
    elif isinstance(dtype, str | tf.DType | np.dtype | type):
        name = dtype
    else:
        return dtype, None
    try:
        as_tf = tf.as_dtype(name)
    except TypeError:
        return dtype, None  # a policy name such as "mixed_float16"
    if as_tf.is_floating:
        return dtype, None
    return as_tf.name, as_tf.name
