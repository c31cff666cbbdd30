"""Unsafe SavedModels, to test a scanner (``hublayer.scan``) against: each op family in
each place an op can hide.

Each model, when called (``__call__`` or ``serving_default`` on a float32 ``[None, 4]``
input), does its unsafe thing with ``target``: writes it, reads it, lists its folder,
or prints to it. Built with plain TensorFlow, the way an attacker would, in about half a
second each. Point ``target`` into a temporary folder.

Example:
    >>> import hublayer, tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> path = unsafe_model(root / "m", "write", "while_body", target=root / "victim.txt")
    >>> [f.op for f in hublayer.scan(path).high]
    ['WriteFile']
"""

from __future__ import annotations

import os
from collections.abc import Callable

import tensorflow as tf

__all__ = ["UNSAFE_FAMILIES", "UNSAFE_PLACES", "unsafe_model"]

#: family -> what the model does with the target path (returns a scalar string tensor).
_FAMILIES: dict[str, Callable[[str], tf.Tensor]] = {
    "write": lambda target: _write(target),
    "read": lambda target: tf.io.read_file(target),
    "list": lambda target: tf.strings.reduce_join(tf.io.matching_files(target + "*")),
    "print_file": lambda target: _print(target),
}
#: Each family, and the op that does it.
UNSAFE_FAMILIES: dict[str, str] = {
    "write": "WriteFile",
    "read": "ReadFile",
    "list": "MatchingFiles",
    "print_file": "PrintV2",
}
#: Where the op hides: ``__call__`` with no signature, a signature only (``__call__`` is
#: clean), a ``while_loop`` body, a ``tf.cond`` branch, a tf.data ``map`` function, a
#: function called from a function.
UNSAFE_PLACES: tuple[str, ...] = (
    "call",
    "signature",
    "while_body",
    "cond_branch",
    "dataset_map",
    "nested_function",
)
SPEC = tf.TensorSpec([None, 4], tf.float32)


def _write(target: str) -> tf.Tensor:
    tf.io.write_file(target, "pwned")
    return tf.constant("")


def _print(target: str) -> tf.Tensor:
    tf.print("pwned", output_stream="file://" + target)
    return tf.constant("")


def _hide(place: str, evil: Callable[[], tf.Tensor], x: tf.Tensor) -> tf.Tensor:
    """Run ``evil`` from ``place`` inside a traced function; returns x (+0)."""
    zero = tf.zeros([], tf.float32)
    if place in ("call", "signature"):
        tf.strings.length(evil())
        return x + zero
    if place == "while_body":

        def body(i: tf.Tensor) -> tf.Tensor:
            tf.strings.length(evil())
            return i + 1

        n = tf.while_loop(lambda i: i < 1, body, [tf.constant(0)])
        return x + tf.cast(n, tf.float32) * zero
    if place == "cond_branch":
        picked = tf.cond(
            tf.reduce_sum(x) > -1.0,
            lambda: tf.cast(tf.strings.length(evil()), tf.float32),
            lambda: zero,
        )
        return x + picked * zero
    if place == "dataset_map":
        data = tf.data.Dataset.from_tensors(zero).map(
            lambda v: v + tf.cast(tf.strings.length(evil()), tf.float32)
        )
        return x + data.get_single_element() * zero
    if place == "nested_function":
        inner = tf.function(lambda: tf.cast(tf.strings.length(evil()), tf.float32))
        return x + inner() * zero
    raise ValueError(place)  # pragma: no cover - checked by unsafe_model


def unsafe_model(
    path: str | os.PathLike[str],
    family: str,
    place: str,
    *,
    target: str | os.PathLike[str],
) -> str:
    """Write a SavedModel that runs ``family`` on ``target`` from ``place``.

    Args:
        path: the folder to write (must not exist).
        family: a key of :data:`UNSAFE_FAMILIES` (``"write"``, ``"read"``, ``"list"``,
            ``"print_file"``).
        place: one of :data:`UNSAFE_PLACES`.
        target: the file the model writes, reads or prints to (or whose folder it lists).

    Returns:
        ``path``, as a string.

    Raises:
        ValueError: an unknown family or place.
    """
    if family not in _FAMILIES or place not in UNSAFE_PLACES:
        raise ValueError(
            f"Expected family in {sorted(_FAMILIES)} and place in {list(UNSAFE_PLACES)}. "
            f"Received: family={family!r}, place={place!r}."
        )
    make = _FAMILIES[family]

    def evil() -> tf.Tensor:
        return make(os.fspath(target))

    root = tf.Module()
    root.w = tf.Variable(tf.ones([4]))

    if place == "signature":
        # __call__ is clean; only the serving signature hides the op.
        root.__call__ = tf.function(lambda x: x * root.w, input_signature=[SPEC])
        serve = tf.function(lambda x: _hide(place, evil, x) * root.w, input_signature=[SPEC])
        root.serve = serve
        tf.saved_model.save(root, os.fspath(path), signatures={"serving_default": serve})
    else:
        root.__call__ = tf.function(
            lambda x: _hide(place, evil, x) * root.w, input_signature=[SPEC]
        )
        # "call": no signature at all; every other place also gets one.
        signatures = {} if place == "call" else {"serving_default": root.__call__}
        tf.saved_model.save(root, os.fspath(path), signatures=signatures)
    return os.fspath(path)
