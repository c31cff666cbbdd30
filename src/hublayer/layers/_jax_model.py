"""What the JAX runner checks and picks on a loaded SavedModel, apart from running it.

- :func:`check_convertible`: every op of the functions the layer may call has a JAX
  version in tf2jax, or :class:`~hublayer.errors.BackendError` names those that do not.
- :func:`conform`: inputs checked and cast as on TensorFlow, also while JAX traces with a
  symbolic batch dimension.
- :func:`matches`: which traced function (input signature, ``training``) fits the inputs.
- :func:`model_order`: the model's ``tf.Variable`` s in the order of the layer's weights.

Example:
    >>> import numpy as np
    >>> stand_in(np.zeros((2, 3), "float32")).shape
    (2, 3)
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
    "functions",
    "matches",
    "model_order",
    "needs_rng",
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
            f"signature that avoids those ops (signature= one of {signatures})."
            + (_TEXT_ROUTE if any(_is_text_op(op) for op in missing) else ""),
            backend="jax",
        )


#: For a text preprocessor on JAX: where its string ops can run instead.
_TEXT_ROUTE = (
    " A text preprocessor (TensorFlow Text, string ops) runs in the input pipeline "
    "instead: records.dataset(files, ..., preprocess=HANDLE, for_model=encoder) feeds "
    "the JAX model token ids."
)


def _is_text_op(op: str) -> bool:
    return any(part in op for part in ("String", "UTF8", "Wordpiece", "Regex", "LookupTable"))


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
