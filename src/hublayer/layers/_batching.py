"""Models traced for one fixed batch size, called with any batch size.

onnx2tf exports (and some other converters) trace their functions for a batch of exactly 1:
every input is ``[1, ...]``. Keras feeds batches of 32 in ``predict()`` and whatever the
dataset holds in ``fit()``. :func:`fixed_batch_size` detects such a model from its input
specs when the layer is built; the layer decides once, with :func:`needs_mapping`, to run
such a model on slices. Each backend then pads the batch to a multiple of that size, runs
the function on each slice and concatenates the results: :func:`map_batches` with
``tf.map_fn`` on TensorFlow (eagerly, traced and under a ``GradientTape``),
:func:`map_slices` with ``jax.lax.map`` on JAX (inference only: the converted function
returns no state updates per slice).

Example:
    >>> import tensorflow as tf
    >>> spec = tf.TensorSpec([1, 3], tf.float32)
    >>> fixed_batch_size((spec,))
    1
    >>> relax_batch(spec)
    TensorSpec(shape=(None, 3), dtype=tf.float32, name=None)
    >>> fn = lambda x: x * 2.0
    >>> map_batches(fn, tf.ones([5, 3]), 1, tf.TensorSpec([1, 3], tf.float32)).shape
    TensorShape([5, 3])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

__all__ = [
    "first",
    "fixed_batch_size",
    "map_batches",
    "map_slices",
    "needs_mapping",
    "relax_batch",
]


def fixed_batch_size(specs: Sequence[Any]) -> int | None:
    """The batch size every input is traced for, or ``None`` when the batch is free.

    A model has a fixed batch size when every input of its (first) accepted structure has
    rank 2 or more and the same static first dimension. Rank-1 inputs (a batch of strings,
    a vector of ids) are left alone: their first dimension need not be a batch.
    """
    if not specs:
        return None
    flat = tf.nest.flatten(specs[0])
    if not flat or not all(isinstance(s, tf.TensorSpec) for s in flat):
        return None
    firsts = set()
    for spec in flat:
        if spec.shape.rank is None or spec.shape.rank < 2:
            return None
        firsts.add(spec.shape[0])
    if len(firsts) != 1:
        return None
    size = firsts.pop()
    return int(size) if size is not None else None


def relax_batch(spec: Any) -> Any:
    """The same nest of specs with a free batch dimension (``None``) first."""

    def relax(s: Any) -> Any:
        if not isinstance(s, tf.TensorSpec) or s.shape.rank is None or s.shape.rank == 0:
            return s
        return tf.TensorSpec([None, *s.shape.as_list()[1:]], s.dtype, s.name)

    return tf.nest.map_structure(relax, spec)


def needs_mapping(inputs: Any, size: int) -> bool:
    """Whether ``inputs`` may hold another batch size than ``size`` (unknown counts)."""
    for x in tf.nest.flatten(inputs):
        shape = getattr(x, "shape", None)
        if shape is not None and len(shape) > 0:
            return shape[0] is None or int(shape[0]) != size
    return False


def map_batches(fn: Callable[[Any], Any], inputs: Any, size: int, output_spec: Any) -> Any:
    """Call ``fn`` on slices of ``size`` examples and concatenate the outputs.

    The batch is padded to a multiple of ``size`` by repeating its first example, and the
    padding is cut off the outputs, so every batch size works, including a last partial
    batch of ``predict()``.

    Args:
        fn: takes a nest shaped like ``inputs`` with a batch of exactly ``size``.
        inputs: a tensor or nest of tensors, all with the same batch size first.
        size: the batch size ``fn`` was traced for.
        output_spec: ``fn``'s output structure, batch dimension included (or free).

    Returns:
        ``fn``'s outputs for the whole batch, batch first.
    """
    flat = tf.nest.flatten(inputs)
    count = tf.shape(flat[0])[0]
    pad = (size - count % size) % size

    def chunks(x: tf.Tensor) -> tf.Tensor:
        padded = tf.concat([x, tf.repeat(x[:1], pad, axis=0)], axis=0)
        return tf.reshape(padded, tf.concat([[-1, size], tf.shape(x)[1:]], axis=0))

    def signature(s: tf.TensorSpec) -> tf.TensorSpec:
        return tf.TensorSpec([size, *s.shape.as_list()[1:]], s.dtype)

    outputs = tf.map_fn(
        fn,
        tf.nest.map_structure(chunks, inputs),
        fn_output_signature=tf.nest.map_structure(signature, output_spec),
    )

    def join(y: tf.Tensor) -> tf.Tensor:
        joined = tf.reshape(y, tf.concat([[-1], tf.shape(y)[2:]], axis=0))[:count]
        joined.set_shape(tf.TensorShape([None]).concatenate(y.shape[2:]))
        return joined

    return tf.nest.map_structure(join, outputs)


def first(x: Any, size: int | None) -> Any:
    """``x`` cut to its first ``size`` examples (``x`` itself for ``None``)."""
    if size is None:
        return x
    return tf.nest.map_structure(lambda a: a[:size], x)


def map_slices(fn: Callable[[Any], Any], x: Any, size: int) -> Any:
    """:func:`map_batches` for JAX: ``fn`` on slices of ``size`` under ``jax.lax.map``.

    The batch is padded to a multiple of ``size`` with copies of its first example, and
    the padding is cut off the outputs, as :func:`map_batches` does.
    """
    import jax
    import jax.numpy as jnp

    leaves = [leaf for leaf in jax.tree.leaves(x) if getattr(leaf, "ndim", 0)]
    count = int(leaves[0].shape[0])
    pad = (-count) % size

    def chunks(a: Any) -> Any:
        a = jnp.asarray(a)
        if pad:
            a = jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)], axis=0)
        return a.reshape((-1, size, *a.shape[1:]))

    outputs = jax.lax.map(fn, jax.tree.map(chunks, x))
    return jax.tree.map(lambda o: o.reshape((-1, *o.shape[2:]))[:count], outputs)
