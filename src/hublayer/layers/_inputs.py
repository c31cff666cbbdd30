"""What a layer feeds its model: plain Python values made tensors, checked against the specs.

- :func:`convert_plain` turns Python numbers and (nested) lists into tensors of the dtype the
  model expects, as any Keras layer does with ``layer(10.)`` or ``layer([[10.]])``.
- :func:`conform_inputs` checks inputs against the function's input specs and casts only
  where no information is lost in meaning (float to float, int to int).
- :func:`describe` writes a spec or tensor as ``float32[?,224,224,3]`` for messages.
- :func:`hint` says what fits a mismatch (resize images, scale ``uint8`` images, tokenize
  text...), so the error names the fix for this case rather than a generic one.

Example:
    >>> import tensorflow as tf
    >>> spec = tf.TensorSpec([None, 1], tf.float32)
    >>> x = convert_plain([[10.0]], (spec,))
    >>> describe(x), describe(tf.TensorSpec(None, tf.string))
    ('float32[1,1]', 'string[<unknown rank>]')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from hublayer.errors import SignatureError

__all__ = ["conform_inputs", "convert_plain", "describe", "hint"]


def _is_tensor_like(x: Any) -> bool:
    return getattr(x, "dtype", None) is not None and getattr(x, "shape", None) is not None


def _to_tensor(x: Any, spec: Any) -> Any:
    """A plain value as a tensor of ``spec``'s dtype, or unchanged when that loses meaning."""
    if _is_tensor_like(x) or not isinstance(spec, tf.TensorSpec):
        return x
    try:
        as_array = np.asarray(x)
    except (TypeError, ValueError):
        return x
    if as_array.dtype == object:
        return x
    kind = tf.as_dtype(as_array.dtype) if as_array.dtype.kind != "U" else tf.string
    same_kind = (
        kind == spec.dtype
        or (kind.is_floating and spec.dtype.is_floating)
        or (kind.is_integer and (spec.dtype.is_integer or spec.dtype.is_floating))
        or (kind == tf.bool and spec.dtype == tf.bool)
    )
    if not same_kind:
        return tf.constant(as_array)  # refused by the check below, with its dtype shown
    return tf.constant(as_array, dtype=spec.dtype)


def _convert(inputs: Any, spec: Any) -> Any:
    if isinstance(spec, tf.TensorSpec):
        return _to_tensor(inputs, spec)
    if isinstance(spec, Mapping):
        if isinstance(inputs, Mapping):
            return {k: _convert(v, spec[k]) if k in spec else v for k, v in inputs.items()}
        if len(spec) == 1:  # a lone value for a single-input signature
            return _convert(inputs, next(iter(spec.values())))
        return inputs
    if (
        isinstance(spec, list | tuple)
        and isinstance(inputs, list | tuple)
        and len(spec) == len(inputs)
    ):
        return type(inputs)(_convert(x, s) for x, s in zip(inputs, spec, strict=True))
    return inputs


def convert_plain(inputs: Any, specs: Sequence[Any]) -> Any:
    """Turn Python numbers, strings and (nested) lists into tensors; leave tensors alone.

    The first accepted spec decides the dtype (a float model gets float32 from ``10`` or
    ``10.``). Values that would change meaning (a float for an int input) keep their own
    dtype, so :func:`conform_inputs` refuses them with a clear message. The structure
    (a tensor, a dict of tensors) is kept.

    Args:
        inputs: what the layer was called with.
        specs: the model's accepted input structures; empty means unknown.

    Returns:
        ``inputs`` with plain values replaced by tensors.
    """
    if not specs:
        return inputs
    return _convert(inputs, specs[0])


def describe(spec: Any) -> str:
    """``float32[?,224,224,3]`` for a spec or tensor; nests as dicts/lists of those."""
    if isinstance(spec, Mapping):
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in sorted(spec.items())) + "}"
    if isinstance(spec, list | tuple):
        return "[" + ", ".join(describe(v) for v in spec) + "]"
    if isinstance(spec, int | float | bool | str | bytes):
        return f"{type(spec).__name__} {spec!r}"
    dtype = getattr(spec, "dtype", None)
    shape = getattr(spec, "shape", None)
    if dtype is None or shape is None:
        return type(spec).__name__
    shape = tf.TensorShape(shape)
    if shape.rank is None:
        dims = "<unknown rank>"
    else:
        dims = ",".join("?" if d is None else str(d) for d in shape.as_list())
    try:
        name = tf.as_dtype(dtype).name
    except TypeError:
        name = str(dtype)
    return f"{name}[{dims}]"


def conform_inputs(
    inputs: Any,
    specs: Sequence[Any],
    *,
    cast: Callable[[Any, tf.DType], Any],
    where: str,
    handle: str | None,
) -> Any:
    """Check ``inputs`` against the accepted specs; cast floats to floats and ints to ints.

    Args:
        inputs: tensors, Keras symbolic tensors, plain Python values, or nests of them.
        specs: the accepted input structures; empty means unknown (nothing is checked).
        cast: ``cast(x, dtype)``, applied only where dtypes differ.
        where: what is being called, for error messages.
        handle: for error messages.

    Returns:
        ``inputs``, with the casts applied, in the spec's structure (a lone tensor fed to a
        single-input signature becomes ``{name: tensor}``).

    Raises:
        SignatureError: no spec fits: the message shows expected and received specs, and
            what fits the mismatch.
    """
    if not specs:
        return inputs
    for spec in specs:
        candidate = _convert(inputs, spec)
        if isinstance(spec, Mapping) and len(spec) == 1 and not isinstance(candidate, Mapping):
            candidate = {next(iter(spec)): candidate}
        try:
            tf.nest.assert_same_structure(spec, candidate, check_types=False)
        except (TypeError, ValueError):
            continue
        if isinstance(spec, Mapping) and set(spec) != set(candidate):
            continue
        flat_spec = tf.nest.flatten(spec)
        flat_inputs = tf.nest.flatten(candidate)
        if all(_fits(x, s) for x, s in zip(flat_inputs, flat_spec, strict=True)):
            converted = [
                x if tf.as_dtype(x.dtype) == s.dtype else cast(x, s.dtype)
                for x, s in zip(flat_inputs, flat_spec, strict=True)
            ]
            return tf.nest.pack_sequence_as(spec, converted)
    received = describe(convert_plain(inputs, specs))
    expected = " or ".join(describe(s) for s in specs)
    raise SignatureError(
        f"Expected inputs for {where} of handle={handle!r} to match {expected}. "
        f"Received: {received}. {hint(convert_plain(inputs, specs), specs[0])} Floats are "
        "cast to the model's float type and ints to its int type; nothing else is converted.",
        handle=handle,
        expected=expected,
        received=received,
    )


def _fits(x: Any, spec: tf.TensorSpec) -> bool:
    if not _is_tensor_like(x):
        return False
    try:
        dtype = tf.as_dtype(x.dtype)
    except TypeError:
        return False
    if dtype != spec.dtype and not (
        (dtype.is_floating and spec.dtype.is_floating)
        or (dtype.is_integer and spec.dtype.is_integer)
    ):
        return False
    return bool(tf.TensorShape(x.shape).is_compatible_with(spec.shape))


def hint(inputs: Any, spec: Any) -> str:
    """One sentence naming what fits the mismatch between ``inputs`` and ``spec``.

    Example:
        >>> import tensorflow as tf
        >>> hint(tf.zeros([2, 64, 64, 3]), tf.TensorSpec([None, 32, 32, 3], tf.float32))[:38]
        'Resize the images to 32x32, e.g. with '
    """
    if isinstance(spec, Mapping) and not isinstance(inputs, Mapping) and len(spec) > 1:
        return f"Feed a dict with the keys {sorted(spec)}."
    if isinstance(spec, Mapping) and isinstance(inputs, Mapping):
        missing, extra = sorted(set(spec) - set(inputs)), sorted(set(inputs) - set(spec))
        if missing or extra:
            return f"Feed a dict with the keys {sorted(spec)} (missing {missing}, extra {extra})."
        for key in sorted(spec):
            if not _fits(inputs[key], spec[key]):
                return f"Input {key!r}: " + hint(inputs[key], spec[key])
        return "Feed the dtypes and shapes shown."
    if isinstance(spec, Mapping) and len(spec) == 1:
        spec = next(iter(spec.values()))
    if not isinstance(spec, tf.TensorSpec) or not _is_tensor_like(inputs):
        return "Feed tensors of the structure shown."
    return _tensor_hint(inputs, spec)


def _tensor_hint(x: Any, spec: tf.TensorSpec) -> str:
    try:
        dtype = tf.as_dtype(x.dtype)
    except TypeError:
        return "Feed a tensor of the dtype shown."
    want = spec.dtype
    shape, wanted = tf.TensorShape(x.shape), spec.shape
    if want == tf.string and dtype != tf.string:
        return "The model takes text: feed strings (e.g. tf.constant(['a sentence']))."
    if dtype == tf.string and want != tf.string:
        return (
            "The model takes token ids, not text: tokenize first with the model's "
            "preprocessor (or keras.layers.TextVectorization / StringLookup)."
        )
    if want.is_integer and dtype.is_floating:
        return "The model takes int ids: feed ints, e.g. keras.ops.cast(ids, 'int32')."
    if want.is_floating and dtype.is_integer:
        if wanted.rank == 4:
            return (
                "The model takes float images: scale them, e.g. with "
                "keras.layers.Rescaling(1 / 255) for [0, 1]."
            )
        return "The model takes floats: cast the ints with keras.ops.cast(x, 'float32')."
    if wanted.rank is not None and shape.rank is not None and shape.rank != wanted.rank:
        if shape.rank + 1 == wanted.rank:
            return "Add the batch dimension first (e.g. x[None] for one example)."
        return f"Feed a tensor of rank {wanted.rank} (the batch dimension first)."
    if wanted.rank == 4 and shape.rank == 4:
        dims, got = wanted.as_list(), shape.as_list()
        if dims[3] is not None and got[3] is not None and dims[3] != got[3]:
            return f"Feed images with {dims[3]} channels (e.g. RGB, channels last)."
        if dims[1:3] != got[1:3] and None not in dims[1:3]:
            return (
                f"Resize the images to {dims[1]}x{dims[2]}, e.g. with "
                f"keras.layers.Resizing({dims[1]}, {dims[2]})."
            )
    return "Feed tensors of that dtype and shape (the batch dimension first)."
