"""What a corpus payload is, and the places it hides in a traced function.

A :class:`Payload` is one op's harmful use, built against the :class:`Targets` a model is
built for; :func:`hide` runs it from one of :data:`PLACES` (the call itself, a signature,
a ``while`` body, a ``cond`` branch, a ``tf.data`` map, a nested function), so that its
string reaches the output. The payloads themselves are in :mod:`._scan_corpus_ops`.

Example:
    >>> Targets(secret="/tmp/s", victim="/tmp/v").at("out.txt")
    '/tmp/v/out.txt'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

__all__ = ["PLACES", "TOKEN_LENGTH", "Payload", "Targets", "hide"]

#: The secret is this many hex characters, then a newline (fixed-length readers need it).
TOKEN_LENGTH = 32

#: Where a payload hides inside the traced function.
PLACES: tuple[str, ...] = (
    "call",
    "signature",
    "while_body",
    "cond_branch",
    "dataset_map",
    "nested_function",
)


@dataclass(frozen=True)
class Targets:
    """The paths a harmful model is built against (none of them inside the model).

    Attributes:
        secret: a text file written *after* the model is built (``token + "\\n"``);
            ``secret + ".tfrecord"`` and ``secret + ".desc"`` are its other forms.
        victim: this model's own folder for files it creates, replaces or deletes.
    """

    secret: str
    victim: str

    def at(self, name: str) -> str:
        """A path inside the victim folder."""
        return os.path.join(self.victim, name)


@dataclass(frozen=True)
class Payload:
    """One op's harmful use.

    Attributes:
        op: the op the published list names (the one the model holds).
        sources: the lists naming it.
        effect: ``leak`` (the secret reaches the output), ``create``, ``replace``,
            ``delete`` (a file outside the model), or ``die`` (the process ends).
        victim: for create/replace/delete, the file name inside the victim folder.
        build: the payload, traced inside a ``tf.function``.
        setup: what the prover prepares first (``merge_source``), or ``""``.
    """

    op: str
    sources: tuple[str, ...]
    effect: str
    victim: str
    build: Callable[[Targets], tf.Tensor]
    setup: str = ""


def hide(place: str, payload: Callable[[], tf.Tensor], x: tf.Tensor) -> tf.Tensor:
    """Run ``evil`` from ``place`` inside a traced function; its string, reaching the output.

    Raises:
        ValueError: an unknown place.
    """

    def evil() -> tf.Tensor:
        return tf.strings.reduce_join(tf.reshape(payload(), [-1]))

    if place in ("call", "signature"):
        return evil()
    if place == "while_body":

        def body(i: tf.Tensor, s: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return i + 1, s + evil()

        return tf.while_loop(lambda i, s: i < 1, body, [tf.constant(0), tf.constant("")])[1]
    if place == "cond_branch":
        return tf.cond(tf.reduce_sum(x) > -1e9, evil, lambda: tf.constant(""))
    if place == "dataset_map":
        data = tf.data.Dataset.from_tensors(tf.constant(0)).map(lambda _: evil())
        return data.get_single_element()
    if place == "nested_function":
        return tf.function(evil)()
    raise ValueError(f"Expected place in {list(PLACES)}. Received: place={place!r}.")
