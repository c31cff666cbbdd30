"""Malicious SavedModels for the scan tests: each op family in each place an op can hide.

Each model, when called (``__call__`` or ``serving_default`` on a float32 ``[None, 4]``
input), does its unsafe thing with ``target`` (a path under the test's folder): writes
it, reads it, lists its folder, or prints to it. Built with plain TensorFlow, the way an
attacker would, in about half a second each.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

#: family -> what the model does with the target path (returns a scalar string tensor).
FAMILIES: dict[str, Callable[[str], tf.Tensor]] = {
    "write": lambda target: _write(target),
    "read": lambda target: tf.io.read_file(target),
    "list": lambda target: tf.strings.reduce_join(tf.io.matching_files(target + "*")),
    "print_file": lambda target: _print(target),
}
#: the op each family is caught by.
FAMILY_OPS = {
    "write": "WriteFile",
    "read": "ReadFile",
    "list": "MatchingFiles",
    "print_file": "PrintV2",
}
PLACES = ("call", "signature", "while_body", "cond_branch", "dataset_map", "nested_function")
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
    raise ValueError(place)


def malicious_model(path: Path, family: str, place: str, target: Path) -> Path:
    """Write a SavedModel that runs ``family`` on ``target`` from ``place``; returns ``path``."""
    make = FAMILIES[family]

    def evil() -> tf.Tensor:
        return make(str(target))

    root = tf.Module()
    root.w = tf.Variable(tf.ones([4]))

    if place == "signature":
        # __call__ is clean; only the serving signature hides the op.
        root.__call__ = tf.function(lambda x: x * root.w, input_signature=[SPEC])
        serve = tf.function(lambda x: _hide(place, evil, x) * root.w, input_signature=[SPEC])
        root.serve = serve
        tf.saved_model.save(root, str(path), signatures={"serving_default": serve})
    else:
        root.__call__ = tf.function(
            lambda x: _hide(place, evil, x) * root.w, input_signature=[SPEC]
        )
        # "call": no signature at all; every other place also gets one.
        signatures = {} if place == "call" else {"serving_default": root.__call__}
        tf.saved_model.save(root, str(path), signatures=signatures)
    return path
