"""A part of a text chain, loaded so that it returns all of its outputs.

``TextChain`` matches the preprocessor's outputs to the encoder's inputs by name and
picks the encoder's output itself (``output_key``, else TF Hub's ``pooled_output``), so
it needs each part's whole dict. A Reusable SavedModel's ``__call__`` returns it as it
is; a signature-only model (Keras 3's ``model.export()``, as most new Kaggle models
ship) answers through a signature, where tensorflow_hub's rule asks for ``output_key``
or ``signature_outputs_as_dict=True``. A part is therefore loaded with
``signature_outputs_as_dict=True`` whenever a signature serves it: the one named, or the
one ``KerasLayer`` picks for a model without ``__call__``.

Example:
    >>> from hublayer.layers._whole_output import whole_output_layer
    >>> encoder = whole_output_layer("/models/minilm-export")  # doctest: +SKIP
    >>> sorted(encoder.compute_output_spec(ids))  # doctest: +SKIP
    ['pooled_output', 'sequence_output']
"""

from __future__ import annotations

import os
from typing import Any

import keras

from hublayer.errors import SignatureError
from hublayer.layers._keras_layer import KerasLayer

__all__ = ["whole_output_layer"]


def whole_output_layer(
    model: Any, *, trainable: bool, signature: str | None = None, what: str = "model"
) -> keras.Layer:
    """``model`` as a layer returning every output (a layer given is kept as it is).

    Args:
        model: a handle or path, or a built ``keras.Layer``.
        trainable: whether the layer trains.
        signature: the signature to call; None calls ``__call__``, or the signature
            ``KerasLayer`` picks for a signature-only model.
        what: the argument's name, for the error.

    Raises:
        TypeError: ``model`` is neither a handle nor a layer.
        SignatureError: as ``KerasLayer`` raises it, for anything but the missing
            output choice this function makes itself.
    """
    if isinstance(model, keras.Layer):
        return model
    if not isinstance(model, str | os.PathLike):
        raise TypeError(
            f"Expected {what} to be a model handle, a local path or a hublayer.KerasLayer. "
            f"Received: {what}={model!r} of type {type(model).__name__}."
        )
    handle = os.fspath(model)
    if signature is not None:
        return KerasLayer(
            handle, signature=signature, signature_outputs_as_dict=True, trainable=trainable
        )
    try:
        return KerasLayer(handle, trainable=trainable)
    except SignatureError as error:
        # A model without __call__ served by a signature of several outputs: take them all.
        if not error.name or not error.available:
            raise
        return KerasLayer(
            handle, signature=error.name, signature_outputs_as_dict=True, trainable=trainable
        )
