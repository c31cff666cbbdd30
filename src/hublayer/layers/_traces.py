"""Which traced function of a model fits: ``__call__``'s traces, and a Keras model's specs.

A SavedModel's ``__call__`` is traced once per combination of its Python arguments
(``training``, ``return_dict``...). :func:`call_specs` keeps the traces that the layer's
``arguments=`` (or the parameters' Python defaults) select, so the symbolic output a
Keras model is built with is the one the eager call returns.

Example:
    >>> import tensorflow as tf
    >>> f = tf.function(lambda x, training=False: x)
    >>> accepts_training(f)
    True
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

__all__ = ["accepts_training", "call_specs", "keras_specs"]


def accepts_training(fn: Any) -> bool:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    training = parameters.get("training")
    return training is not None and training.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def call_specs(fn: Any, arguments: Mapping[str, Any]) -> tuple[tuple[Any, ...], Any]:
    """Input specs of the traces of a restored ``__call__`` that fit ``arguments``.

    A SavedModel's ``__call__`` is traced once per combination of its Python arguments
    (``training=True/False``, ``return_dict=True/False``...). Only the traces whose bound
    Python values equal the layer's ``arguments`` (else the parameters' Python defaults,
    as a call without them would bind) are candidates, and the output spec is the one of
    the ``training=False`` trace among them.
    """
    concrete = list(getattr(fn, "concrete_functions", ()) or ())
    names, defaults = _parameters(fn)
    wanted = {k: v for k, v in defaults.items() if k != "training"}
    wanted.update(arguments)
    inputs: list[Any] = []
    output: Any = None
    for function in concrete:
        args, kwargs = function.structured_input_signature
        if not args or not _is_spec_nest(args[0]):
            continue
        bound = dict(zip(names[1:], args[1:], strict=False))
        bound.update(kwargs)
        if any(
            name in bound and not _same_value(bound[name], value) for name, value in wanted.items()
        ):
            continue
        if args[0] not in inputs:
            inputs.append(args[0])
        training = bound.get("training", False)
        if output is None or training is False:
            output = function.structured_outputs
    return tuple(inputs), output


def _parameters(fn: Any) -> tuple[list[str], dict[str, Any]]:
    """Parameter names, and the Python defaults of those that have one."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return [], {}
    defaults = {
        name: p.default
        for name, p in parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    return list(parameters), defaults


def _same_value(traced: Any, value: Any) -> bool:
    if isinstance(traced, tf.TensorSpec):
        return True  # a tensor argument: every value fits the trace
    try:
        return bool(traced == value)
    except (TypeError, ValueError):
        return False


def keras_specs(model: keras.Layer) -> tuple[tuple[Any, ...], Any]:
    """Input and output specs of a functional Keras model (nothing for other layers)."""
    try:
        inputs, outputs = model.input, model.output
    except (AttributeError, ValueError):
        return (), None

    def spec(tensor: Any) -> tf.TensorSpec:
        return tf.TensorSpec(tensor.shape, tensor.dtype)

    return (tf.nest.map_structure(spec, inputs),), tf.nest.map_structure(spec, outputs)


def _is_spec_nest(value: Any) -> bool:
    flat = tf.nest.flatten(value)
    return bool(flat) and all(isinstance(s, tf.TensorSpec) for s in flat)
