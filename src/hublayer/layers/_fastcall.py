"""Call a restored ``__call__`` through the concrete function TensorFlow would pick.

A SavedModel's ``__call__`` comes back from ``tf.saved_model.load`` as a polymorphic
``tf.function``. Its first call traces a wrapper graph whose body searches the saved
traces, which on a cold start costs about as much CPU as running a small model once
(the ``load`` case of ``benchmarks/RESULTS.md`` times a cold process to its first
output). :func:`call_restored` makes the same choice TensorFlow's wrapper
makes (the first saved trace that takes the inputs as they are, in the saved order) and
calls it; whenever that choice is not plain (no such trace, inputs that would need a
conversion, a TensorFlow outside the releases :mod:`hublayer._foreign_tf` was written
for, which it logs) it calls ``fn`` as before, so the result is always what
``fn(*args, **kwargs)`` returns.

Example:
    >>> import tensorflow as tf
    >>> from hublayer import testing
    >>> model = tf.saved_model.load(testing.image_feature_vector("/tmp/ifv-fast", dim=4))
    >>> x = tf.zeros([2, 32, 32, 3])
    >>> call_restored(model.__call__, (x,), {"training": False}).shape
    TensorShape([2, 4])
"""

from __future__ import annotations

from typing import Any

from hublayer._foreign_tf import restored_trace_picker

__all__ = ["call_restored"]


def _restored(fn: Any) -> Any:
    """The restored ``tf.function`` behind ``fn`` (itself, or a loaded object's ``__call__``)."""
    if type(fn).__name__ == "RestoredFunction":
        return fn
    # A loaded SavedModel sets __call__ on the instance; calling the object goes there.
    inner = vars(fn).get("__call__") if hasattr(fn, "__dict__") else None
    return inner if type(inner).__name__ == "RestoredFunction" else None


def call_restored(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``fn(*args, **kwargs)``, skipping the dispatch wrapper of a restored function.

    Args:
        fn: any callable; a restored ``tf.function`` (one with saved traces), or a loaded
            SavedModel whose ``__call__`` is one, takes the direct path.
        args: positional arguments, as ``fn`` would get them.
        kwargs: keyword arguments, as ``fn`` would get them.

    Returns:
        What ``fn(*args, **kwargs)`` returns.
    """
    picker = restored_trace_picker()  # None outside the TF releases it was written for
    restored = _restored(fn)
    traces = getattr(restored, "concrete_functions", None)
    if picker is None or restored is None or not traces:
        return fn(*args, **kwargs)
    inputs = picker.bind(restored, args, kwargs)  # as Function.__call__ binds them
    if inputs is None:  # fn itself says what is wrong with these inputs
        return fn(*args, **kwargs)
    for trace in traces:
        if any(captured is None for captured in trace.captured_inputs):
            return fn(*args, **kwargs)  # let TensorFlow raise its own error
        if picker.callable_with(trace, inputs):
            return picker.call(trace, inputs)
    return fn(*args, **kwargs)
