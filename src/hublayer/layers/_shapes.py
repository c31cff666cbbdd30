"""Output shapes: TF Hub's ``output_shape`` argument, and specs stored in a layer's config.

``output_shape`` is given without the batch dimension, as a shape or a nest (dict, list,
tuple) of shapes matching the model's outputs. Specs are stored in build configs as
``[shape, dtype]`` pairs, in the same nest.

Example:
    >>> import tensorflow as tf
    >>> spec = with_output_shape(tf.TensorSpec([None, None], tf.float32), parse_output_shape([8]))
    >>> spec
    TensorSpec(shape=(None, 8), dtype=tf.float32, name=None)
    >>> spec_from_config(spec_to_config(spec)) == spec
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

from hublayer.layers._adapters import output_dtype

__all__ = [
    "OutputShape",
    "batch_size",
    "keras_tensors",
    "output_shape_of",
    "output_shape_to_config",
    "parse_output_shape",
    "set_output_shape",
    "spec_from_config",
    "spec_to_config",
    "symbolic_inputs",
    "with_output_shape",
]


class OutputShape(tuple):  # type: ignore[type-arg]
    """A Keras 3 shape tuple that also reads like a ``tf.TensorShape`` (drop-in code).

    Example:
        >>> shape = OutputShape((None, 8))
        >>> shape == (None, 8), shape.as_list(), shape.rank
        (True, [None, 8], 2)
    """

    def as_list(self) -> list[int | None]:
        """The dimensions as a list, as ``tf.TensorShape.as_list()``."""
        return list(self)

    @property
    def rank(self) -> int:
        """The number of dimensions, as ``tf.TensorShape.rank``."""
        return len(self)


def output_shape_of(tensor: Any) -> OutputShape | None:
    """The :class:`OutputShape` of a Keras symbolic tensor (``None`` for an unknown rank)."""
    shape = getattr(tensor, "shape", None)
    return OutputShape(shape) if shape is not None else None


def parse_output_shape(value: Any) -> Any:
    """``output_shape`` as a nest of ``tf.TensorShape``.

    Raises:
        TypeError: something that is neither a shape nor a dict/list/tuple of shapes.
    """
    if isinstance(value, tf.TensorShape):
        return value
    if isinstance(value, Mapping):
        return {k: parse_output_shape(v) for k, v in value.items()}
    if isinstance(value, list | tuple) and all(d is None or isinstance(d, int) for d in value):
        return tf.TensorShape(value)
    if isinstance(value, list | tuple):
        return type(value)(parse_output_shape(v) for v in value)
    raise TypeError(
        "Expected output_shape to be a shape (a list of ints and None, without the batch "
        f"dimension) or a dict/list of shapes. Received: output_shape={value!r}."
    )


def output_shape_to_config(shapes: Any) -> Any:
    """Inverse of :func:`parse_output_shape`, JSON-ready (``None`` stays ``None``)."""
    if shapes is None:
        return None
    return _map(shapes, _dims)


def _dims(shape: tf.TensorShape) -> list[int | None] | None:
    return list(shape.as_list()) if shape.rank is not None else None


def _flatten(shapes: Any) -> list[tf.TensorShape]:
    if isinstance(shapes, tf.TensorShape):
        return [shapes]
    if isinstance(shapes, Mapping):
        return [s for k in sorted(shapes) for s in _flatten(shapes[k])]
    return [s for v in shapes for s in _flatten(v)]


def _map(shapes: Any, fn: Any) -> Any:
    if isinstance(shapes, tf.TensorShape):
        return fn(shapes)
    if isinstance(shapes, Mapping):
        return {k: _map(v, fn) for k, v in shapes.items()}
    return [_map(v, fn) for v in shapes]


def with_output_shape(spec: Any, shapes: Any) -> Any:
    """The model's output spec, with shapes from ``output_shape`` (batch dimension added).

    Dtypes come from ``spec`` where it is known, else float32.
    """
    dtypes = [s.dtype for s in tf.nest.flatten(spec)] if spec is not None else []
    flat = iter(
        tf.TensorSpec([None, *shape.as_list()], dtypes[i] if i < len(dtypes) else tf.float32)
        for i, shape in enumerate(_flatten(shapes))
    )

    def pack(node: Any) -> Any:
        if isinstance(node, tf.TensorShape):
            return next(flat)
        if isinstance(node, Mapping):
            packed = {k: pack(node[k]) for k in sorted(node)}
            return {k: packed[k] for k in node}
        return type(node)(pack(v) for v in node)

    return pack(shapes)


def set_output_shape(outputs: Any, shapes: Any, inputs: Any) -> Any:
    """Set ``output_shape`` on the outputs, as TF Hub does for models without shape info."""
    batch = tf.TensorShape([batch_size(inputs)])
    for tensor, shape in zip(tf.nest.flatten(outputs), _flatten(shapes), strict=False):
        if hasattr(tensor, "set_shape"):
            tensor.set_shape(batch.concatenate(shape))
    return outputs


def batch_size(inputs: Any) -> int | None:
    """The static batch size of the first input that has a rank, else ``None``."""
    for x in tf.nest.flatten(inputs):
        shape = getattr(x, "shape", None)
        if shape is not None and len(shape) > 0:
            first = shape[0]
            return None if first is None else int(first)
    return None


def keras_tensors(spec: Any, inputs: Any, compute_dtype: str | None) -> Any:
    """Keras symbolic tensors for an output spec, with the inputs' batch size."""
    batch = batch_size(inputs)

    def convert(s: tf.TensorSpec) -> keras.KerasTensor:
        shape = s.shape.as_list() if s.shape.rank is not None else None
        if shape and shape[0] is None:
            shape[0] = batch
        dtype = output_dtype(s.dtype, compute_dtype)
        return keras.KerasTensor(tuple(shape) if shape is not None else None, dtype.name)

    return tf.nest.map_structure(convert, spec)


def spec_to_config(spec: Any) -> Any:
    """A nest of ``tf.TensorSpec`` as JSON-ready ``[shape, dtype]`` pairs."""
    if spec is None:
        return None
    return tf.nest.map_structure(
        lambda s: [s.shape.as_list() if s.shape.rank is not None else None, s.dtype.name], spec
    )


def spec_from_config(config: Any) -> Any:
    """Inverse of :func:`spec_to_config`."""
    if config is None:
        return None
    if (
        isinstance(config, list)
        and len(config) == 2
        and isinstance(config[1], str)
        and (config[0] is None or isinstance(config[0], list))
    ):
        return tf.TensorSpec(config[0], config[1])
    if isinstance(config, Mapping):
        return {k: spec_from_config(v) for k, v in config.items()}
    return [spec_from_config(v) for v in config]


def _is_shape(value: Any) -> bool:
    if isinstance(value, tf.TensorShape):
        return True
    return isinstance(value, list | tuple) and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in value
    )


def symbolic_inputs(input_shape: Any, specs: Any) -> Any:
    """Keras symbolic tensors for ``input_shape`` (a shape, or a dict/list of shapes).

    Dtypes come from the model's first accepted input structure where it lines up
    (``int32`` ids for a BERT encoder), else float32.

    Example:
        >>> import tensorflow as tf
        >>> symbolic_inputs((None, 8), (tf.TensorSpec([None, 8], tf.int32),)).dtype
        'int32'
    """
    spec = specs[0] if specs else None

    def build(shape: Any, spec: Any) -> Any:
        if isinstance(spec, Mapping) and len(spec) == 1 and not isinstance(shape, Mapping):
            spec = next(iter(spec.values()))
        if _is_shape(shape):
            dims = tf.TensorShape(shape)
            dtype = spec.dtype.name if isinstance(spec, tf.TensorSpec) else "float32"
            return keras.KerasTensor(
                tuple(dims.as_list()) if dims.rank is not None else None, dtype
            )
        if isinstance(shape, Mapping):
            named = spec if isinstance(spec, Mapping) else {}
            return {k: build(v, named.get(k)) for k, v in shape.items()}
        if isinstance(shape, list | tuple):
            listed = spec if isinstance(spec, list | tuple) and len(spec) == len(shape) else None
            return [build(v, listed[i] if listed else None) for i, v in enumerate(shape)]
        raise TypeError(
            "Expected input_shape to be a shape (a tuple of ints and None) or a dict/list "
            f"of shapes. Received: input_shape={shape!r}."
        )

    return build(input_shape, spec)
