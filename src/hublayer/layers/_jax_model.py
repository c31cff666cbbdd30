"""What the JAX layer checks and picks on a loaded SavedModel, apart from the layer itself.

- :func:`check_convertible`: every op of the functions the layer may call has a JAX
  version in tf2jax, or :class:`~hublayer.errors.BackendError` names those that do not.
- :func:`conform`: inputs checked and cast as on TensorFlow, also while JAX traces with a
  symbolic batch dimension.
- :func:`matches`: which traced function (input signature, ``training``) fits the inputs.
- :func:`model_order`: the model's ``tf.Variable`` s in the order of the layer's weights.

Example:
    >>> patterns("kernel$")
    ['kernel$']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from hublayer.errors import BackendError, SignatureError
from hublayer.layers import _inputs, _jax_convert, _signatures, _variables
from hublayer.layers._loading import LoadedModel

__all__ = [
    "CastTo",
    "check_convertible",
    "check_same_model",
    "conform",
    "first",
    "functions",
    "is_shape",
    "map_slices",
    "matches",
    "model_order",
    "needs_rng",
    "patterns",
    "placeholder",
    "slices_needed",
    "stand_in",
    "where",
]


def conform(inputs: Any, target: _signatures.Target, handle: str | None) -> Any:
    """The inputs in the spec's structure, cast as on TensorFlow.

    The check runs on stand-ins with static shapes: while Keras infers an enclosing
    layer's output shape, JAX passes arrays whose batch dimension is symbolic.
    """
    flat = tf.nest.flatten(inputs)
    stand_ins = [stand_in(x) for x in flat]
    real = {id(p): x for p, x in zip(stand_ins, flat, strict=True)}
    conformed = _inputs.conform_inputs(
        tf.nest.pack_sequence_as(inputs, stand_ins),
        target.input_specs,
        cast=CastTo,
        where=where(target),
        handle=handle,
    )

    def restore(leaf: Any) -> Any:
        if isinstance(leaf, CastTo):
            return keras.ops.cast(real[id(leaf.stand_in)], leaf.dtype.name)
        return real.get(id(leaf), leaf)

    return tf.nest.map_structure(restore, conformed)


def check_convertible(loaded: LoadedModel, handle: str | None) -> None:
    target = loaded.target
    called = functions(loaded)
    if not called:
        raise BackendError(
            "Expected a SavedModel whose __call__ was traced, to convert it for JAX. "
            f"Received: handle={handle!r}, whose __call__ has no traced functions. Use a "
            "signature (signature=...), or the TensorFlow backend (KERAS_BACKEND=tensorflow).",
            backend="jax",
        )
    missing = sorted({op for f in called for op in _jax_convert.unsupported_ops(f)})
    if missing:
        what = where(target)
        signatures = sorted(getattr(loaded.obj, "signatures", None) or {})
        raise BackendError(
            f"Expected a model whose ops JAX can run (through tf2jax). Received: "
            f"handle={handle!r}, whose {what} uses ops tf2jax cannot convert: {missing}. "
            "Use the TensorFlow backend (KERAS_BACKEND=tensorflow) for this model, or a "
            f"signature that avoids those ops (signature= one of {signatures}).",
            backend="jax",
        )


def is_shape(value: Any) -> bool:
    return isinstance(value, tuple | list) and all(d is None or isinstance(d, int) for d in value)


def functions(loaded: LoadedModel) -> list[Any]:
    target = loaded.target
    if target.signature is not None:
        return [f for f in (target.fn, target.training_fn) if f is not None]
    return list(getattr(loaded.obj.__call__, "concrete_functions", ()) or ())


def needs_rng(loaded: LoadedModel) -> bool:
    return any(_jax_convert.uses_stateful_random(f) for f in functions(loaded))


def check_same_model(
    saved: Sequence[_variables.VariableSlot],
    loaded: Sequence[_variables.VariableSlot],
    handle: str | None,
) -> None:
    expected = [(s.name, s.shape, s.dtype) for s in saved]
    received = [(s.name, s.shape, s.dtype) for s in loaded]
    if expected != received:
        different = [e for e, r in zip(expected, received, strict=False) if e != r][:3]
        raise SignatureError(
            "Expected the model to be the one this layer was saved with. Received: "
            f"handle={handle!r}, whose variables differ ({different or 'in number'}). Point "
            "the handle back at the original model, or save with embed_saved_model=True.",
            handle=handle,
        )


def model_order(obj: Any, captured: Sequence[tf.Variable]) -> list[tf.Variable]:
    """The model's variables in the order ``_variables.wrap_variables`` gives them."""
    listed = getattr(obj, "trainable_variables", None)
    if listed is None:
        listed = [v for v in captured if v.trainable]
    seen: set[int] = set()
    ordered: list[tf.Variable] = []
    for variable in [*listed, *(getattr(obj, "variables", ()) or ()), *captured]:
        if id(variable) not in seen:
            seen.add(id(variable))
            ordered.append(variable)
    return ordered


def matches(concrete: Any, x: Any, mode: bool | None, target: _signatures.Target) -> bool:
    args, kwargs = concrete.structured_input_signature
    if target.signature is not None:
        return True
    if mode is not None:
        training = args[1] if len(args) > 1 else kwargs.get("training", False)
        if training is not mode:
            return False
    if not args:
        return False
    try:
        stand_ins = tf.nest.map_structure(stand_in, x)
        _inputs.conform_inputs(stand_ins, (args[0],), cast=CastTo, where="", handle=None)
    except SignatureError:
        return False
    return True


def placeholder(slot: _variables.VariableSlot) -> keras.Variable:
    return keras.Variable(
        initializer="zeros",
        shape=slot.shape,
        dtype=slot.dtype,
        trainable=slot.trainable,
        autocast=False,
        name=_variables.keras_name(slot.name),
    )


class CastTo:
    """A cast ``conform_inputs`` asked for, applied to the real input afterwards."""

    def __init__(self, stand_in: Any, dtype: tf.DType) -> None:
        self.stand_in, self.dtype = stand_in, dtype


def stand_in(x: Any) -> Any:
    """A symbolic tensor of ``x``'s dtype and shape (``None`` for a symbolic dimension)."""
    shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    if shape is None or dtype is None or isinstance(x, keras.KerasTensor):
        return x
    dims = tuple(d if isinstance(d, int) else None for d in shape)
    return keras.KerasTensor(dims, dtype=keras.backend.standardize_dtype(dtype))


def where(target: _signatures.Target) -> str:
    return f"signature {target.signature!r}" if target.signature else "__call__"


def patterns(value: Sequence[str] | str | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(p) for p in value]


def slices_needed(x: Any, fixed: int | None, mode: bool | None) -> int | None:
    """The slice size to map over: a fixed-batch model fed another batch, in inference."""
    if fixed is None or mode:
        return None
    leaves = [leaf for leaf in tf.nest.flatten(x) if getattr(leaf, "shape", None)]
    count = leaves[0].shape[0] if leaves else None
    return fixed if isinstance(count, int) and count != fixed else None


def first(x: Any, size: int | None) -> Any:
    """``x`` cut to its first ``size`` examples (``x`` itself for ``None``)."""
    if size is None:
        return x
    return tf.nest.map_structure(lambda a: a[:size], x)


def map_slices(fn: Any, x: Any, size: int) -> Any:
    """``fn`` on slices of ``size`` examples under ``jax.lax.map``, outputs concatenated.

    The batch is padded to a multiple of ``size`` with copies of its first example, and
    the padding is cut off the outputs, as the TensorFlow layer does.
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
