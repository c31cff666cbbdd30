"""The classifier's parts: the head, and the two models that share it.

``head_model`` maps a feature vector to class probabilities (what feature extraction
trains on cached features). ``classifier`` is the whole model, input to probabilities,
with the backbone called through :class:`~hublayer.layers.BackboneCall`. Both
use the same head layer, so training one trains the other.

Example:
    >>> parts = assemble(backbone, spec, head=None, num_classes=10, dim=1280)  # doctest: +SKIP
    >>> parts.classifier.output_shape  # doctest: +SKIP
    (None, 10)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import keras

from hublayer._specs import TensorInfo
from hublayer.layers import BackboneCall

__all__ = ["HeadLike", "Parts", "assemble", "build_head", "describe_head"]

#: What ``fit_classifier(head=...)`` accepts: hidden layer sizes, a layer, or a factory
#: called with the number of classes.
HeadLike: TypeAlias = "Sequence[int] | keras.Layer | Callable[[int], keras.Layer] | None"


def build_head(head: HeadLike, *, num_classes: int, dropout: float) -> keras.Layer:
    """The classification head.

    Args:
        head: None or ``()`` for dropout then a softmax Dense layer; a sequence of ints
            for hidden ReLU Dense layers before it; a Keras layer that outputs class
            probabilities; or a callable ``f(num_classes) -> keras.Layer``.
        num_classes: the number of classes.
        dropout: dropout rate before the output layer (the default heads only).

    Returns:
        A layer mapping ``[batch, features]`` to ``[batch, num_classes]`` probabilities.

    Raises:
        TypeError: ``head`` is none of the accepted kinds.
        ValueError: a hidden size is not a positive integer.
    """
    if isinstance(head, keras.Layer):
        return head
    if callable(head):
        layer = head(num_classes)
        if not isinstance(layer, keras.Layer):
            raise TypeError(
                "Expected head(num_classes) to return a keras.Layer. "
                f"Received: {type(layer).__name__}. Return e.g. a keras.Sequential."
            )
        return layer
    if head is None:
        hidden: tuple[int, ...] = ()
    elif isinstance(head, Sequence) and not isinstance(head, str):
        hidden = tuple(head)
    else:
        raise TypeError(
            "Expected head to be None, a list of hidden layer sizes, a keras.Layer or a "
            f"callable(num_classes). Received: head={head!r}."
        )
    if not all(isinstance(units, int) and units > 0 for units in hidden):
        raise ValueError(
            f"Expected hidden layer sizes to be positive integers. Received: head={head!r}."
        )
    layers: list[keras.Layer] = []
    for units in hidden:
        layers += [keras.layers.Dropout(dropout), keras.layers.Dense(units, activation="relu")]
    layers += [keras.layers.Dropout(dropout), keras.layers.Dense(num_classes, activation="softmax")]
    return keras.Sequential(layers, name="head")


def describe_head(head: HeadLike) -> Any:
    """A stable description of ``head`` for the run's fingerprint."""
    if isinstance(head, keras.Layer):
        return {"class": type(head).__qualname__, "config": head.get_config()}
    if callable(head):
        return getattr(head, "__qualname__", type(head).__qualname__)
    return list(head or ())


@dataclass(frozen=True)
class Parts:
    """The backbone, the head and the two models built around them."""

    backbone: keras.Layer
    head: keras.Layer
    head_model: keras.Model
    classifier: keras.Model


def assemble(
    backbone: keras.Layer,
    spec: TensorInfo,
    *,
    head: keras.Layer,
    dim: int,
    train_batch_norm: bool,
) -> Parts:
    """Build ``head_model`` (features to probabilities) and ``classifier`` (input to
    probabilities), sharing ``head``."""
    features = keras.Input(shape=(dim,), dtype="float32", name="features")
    head_model = keras.Model(features, head(features), name="head_model")
    inputs = keras.Input(shape=spec.shape[1:], dtype=spec.dtype, name=spec.name)
    embedded = BackboneCall(backbone, train_batch_norm=train_batch_norm, name="backbone")(inputs)
    classifier = keras.Model(inputs, head(embedded), name="classifier")
    return Parts(backbone=backbone, head=head, head_model=head_model, classifier=classifier)
