"""SavedModel functions as JAX functions, through tf2jax, with their variables named.

A restored ``__call__`` holds one flat ``ConcreteFunction`` per traced input signature and
``training`` value. Those flat graphs are what is converted: asking the restored function
for a concrete function instead gives a wrapper whose body is a nested call, and tf2jax
cannot return variable updates (BatchNorm statistics) from inside a nested call.

- :func:`unsupported_ops` lists the ops of a function (nested functions included) that
  tf2jax has no JAX version of, before anything is converted.
- :func:`convert` turns one concrete function into a :class:`JaxFunction`: a pure
  ``fn(params, *args, **kwargs) -> (outputs, new_params)`` whose parameters are tied to the
  ``tf.Variable`` objects they came from, so a layer can feed its Keras variables.

Shapes: the function keeps the SavedModel's input spec, usually with an unknown batch
dimension. JAX traces with concrete shapes, so one conversion serves every batch size
(``jax.jit`` retraces per shape, as for any Keras layer).

Example:
    >>> import tensorflow as tf
    >>> model = tf.saved_model.load(path)  # doctest: +SKIP
    >>> function = model.__call__.concrete_functions[0]  # doctest: +SKIP
    >>> unsupported_ops(function)  # doctest: +SKIP
    []
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from hublayer import _foreign_tf2jax

__all__ = ["JaxFunction", "convert", "function_ops", "unsupported_ops", "uses_stateful_random"]

#: TF ops tf2jax implements with a JAX PRNG key passed as ``rng`` (stateful random ops).
STATEFUL_RANDOM_OPS = frozenset({"RandomStandardNormal", "RandomUniform", "RandomUniformInt"})
_ASSIGN_OPS = frozenset({"AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp"})


def function_ops(function: Any) -> set[str]:
    """Every op type a concrete function runs, its nested functions included."""
    graph_def = function.graph.as_graph_def()
    ops = {node.op for node in graph_def.node}
    for library_function in graph_def.library.function:
        ops.update(node.op for node in library_function.node_def)
    return ops


def unsupported_ops(function: Any) -> list[str]:
    """The op types of ``function`` that tf2jax cannot convert, sorted.

    tf2jax keeps its op table private; the table is read (through
    :mod:`hublayer._foreign_tf2jax`, which checks tf2jax's version) with the same function
    its converter calls, so this list is exactly what conversion would refuse.
    """
    return sorted(_foreign_tf2jax.unsupported_operations(function_ops(function)))


def uses_stateful_random(function: Any) -> bool:
    """Whether the function draws from a stateful random op (it then needs a PRNG key)."""
    return bool(function_ops(function) & STATEFUL_RANDOM_OPS)


@dataclass(frozen=True)
class JaxFunction:
    """One converted concrete function.

    Attributes:
        fn: ``fn(params, *args, rng=None, **kwargs) -> (outputs, new_params)``.
        variables: parameter name -> the ``tf.Variable`` it stands for.
        constants: parameter name -> value, for captured variables the model does not list.
        assigns: whether the function assigns variables (BatchNorm statistics, seeds).
        needs_rng: whether ``fn`` needs ``rng=`` (a JAX PRNG key).
    """

    fn: Callable[..., Any]
    variables: Mapping[str, tf.Variable]
    constants: Mapping[str, Any]
    assigns: bool
    needs_rng: bool


class _Fixed:
    """What ``tf2jax.convert`` asks of a ``tf.function``, answered by one flat function."""

    def __init__(self, function: Any, function_spec: Any) -> None:
        self._function = function
        if function_spec is not None:
            self.function_spec = function_spec

    def get_concrete_function(self, *args: Any, **kwargs: Any) -> Any:
        return self._function


def convert(
    function: Any, function_spec: Any, known: Mapping[int, Any], *, where: str
) -> JaxFunction:
    """Convert a flat concrete function with tf2jax.

    Args:
        function: a ``ConcreteFunction`` (one of ``restored.__call__.concrete_functions``, or a
            signature).
        function_spec: the restored ``tf.function``'s ``function_spec`` (its argument names),
            or ``None`` for a signature, which takes keyword arguments only.
        known: ``id(tf_variable)`` -> anything, for the variables the layer owns; captured
            variables outside it become constants.
        where: what is converted, for error messages.

    Returns:
        The :class:`JaxFunction`.

    Raises:
        RuntimeError: tf2jax named the parameters differently than expected (a tf2jax
            version this module was not written for).
    """
    tf2jax = importlib.import_module("tf2jax")
    args, kwargs = function.structured_input_signature
    fn, params = tf2jax.convert(_Fixed(function, function_spec), *args, **kwargs)
    names = _parameter_names(function)
    if set(names) != set(params):
        raise RuntimeError(
            f"Expected tf2jax to name the variables of {where} {sorted(names)[:5]}... Received: "
            f"{sorted(params)[:5]}... Install the tf2jax version of the [jax] extra "
            '(pip install "hublayer[jax]").'
        )
    variables = {name: v for name, v in names.items() if id(v) in known}
    constants = {name: v.numpy() for name, v in names.items() if id(v) not in known}
    assigns = bool(function_ops(function) & _ASSIGN_OPS)
    return JaxFunction(fn, variables, constants, assigns, uses_stateful_random(function))


def _parameter_names(function: Any) -> dict[str, tf.Variable]:
    """tf2jax's name for each captured variable, in its order and with its de-duplication."""
    by_handle = {v.handle.ref(): v for v in function.variables}
    names: dict[str, tf.Variable] = {}
    for captured in function.captured_inputs:
        if captured.dtype != tf.resource:
            continue
        variable = by_handle[captured.ref()]
        base = variable.name.split(":")[0].split("^")[-1]
        name, suffix = base, 1
        while name in names:
            name, suffix = f"{base}_{suffix}", suffix + 1
        names[name] = variable
    return names
