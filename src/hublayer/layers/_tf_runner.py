"""``KerasLayer``'s model on the TensorFlow backend: the SavedModel's own functions.

The model's ``tf.Variable`` s are the layer's Keras variables (``keras.Variable`` keeps
the ``tf.Variable`` it is given: shared storage), so the saved functions and every Keras
optimizer read and write the same values. ``training`` picks between the functions TF Hub
models trace for ``training=True`` and ``training=False`` (a symbolic value chooses with
``tf.cond``); ``KerasLayer`` passes ``training=None`` while it is frozen (the BatchNorm rule).

Example:
    >>> from hublayer import testing
    >>> from hublayer.layers._loading import CallOptions
    >>> runner = TFRunner()
    >>> options = CallOptions(testing.image_feature_vector("/tmp/ifv-run", dim=4),
    ...                       None, None, None, None, False, None)
    >>> loaded = runner.load(None, options)
    >>> x = runner.conform(tf.zeros([2, 32, 32, 3]), loaded.target, None)
    >>> runner.run(loaded, x, training=None, arguments={}, slices=None).shape
    TensorShape([2, 4])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from hublayer.layers import _batching, _inputs, _regularization, _signatures, _variables
from hublayer.layers._adapters import cast_input
from hublayer.layers._fastcall import call_restored
from hublayer.layers._loading import CallOptions, LoadedModel, PendingModel, load_model

__all__ = ["TFRunner"]


class TFRunner:
    """The :class:`~hublayer.layers._runner.Runner` of the TensorFlow backend (stateless)."""

    def load(
        self,
        layer: keras.Layer | None,
        options: CallOptions,
        *,
        source: Path | None = None,
        pending: PendingModel | None = None,
        obj: Any = None,
    ) -> LoadedModel:
        """Load, handing ``pending``'s placeholders to TensorFlow as the model's variables."""
        return load_model(options, source=source, pending=pending, obj=obj)

    def accept(self, inputs: Any, target: _signatures.Target, handle: str | None) -> Any:
        """``layer(10.)`` and ``layer([[10.]])`` become tensors of the model's dtype, checked.

        The check runs before Keras turns errors raised inside ``call`` into a generic
        "Exception encountered when calling" copy without the error's fields.
        """
        inputs = _inputs.convert_plain(inputs, target.input_specs)
        _inputs.conform_inputs(
            inputs, target.input_specs, cast=_no_cast, where=where(target), handle=handle
        )
        return inputs

    def conform(self, inputs: Any, target: _signatures.Target, handle: str | None) -> Any:
        """The inputs in the spec's structure, floats and ints cast to the model's types."""
        return _inputs.conform_inputs(
            inputs, target.input_specs, cast=cast_input, where=where(target), handle=handle
        )

    def run(
        self,
        loaded: LoadedModel,
        x: Any,
        *,
        training: Any,
        arguments: Mapping[str, Any],
        slices: int | None,
    ) -> Any:
        """Call the saved function; on slices with ``tf.map_fn`` for a fixed-batch model."""
        if slices is None:
            return _call(loaded, x, training, arguments)
        return _batching.map_batches(
            lambda part: _call(loaded, part, training, arguments),
            x,
            slices,
            loaded.target.output_spec,
        )

    def losses(self, loaded: LoadedModel, *, trainable: bool) -> list[Any]:
        """The saved loss functions' values while ``trainable``, else zeros."""
        return _regularization.model_losses(loaded.regularizers, trainable=trainable)


def _call(loaded: LoadedModel, x: Any, training: Any, arguments: Mapping[str, Any]) -> Any:
    target = loaded.target
    fn = target.fn
    if target.signature is not None:
        train_fn = target.training_fn
        if train_fn is None:
            return fn(**x, **arguments)
        return _pick(lambda: fn(**x, **arguments), lambda: train_fn(**x), training, loaded)
    if target.has_training:  # call_restored: the trace TF would pick, without its wrapper
        return _pick(
            lambda: call_restored(fn, (x,), {"training": False, **arguments}),
            lambda: call_restored(fn, (x,), {"training": True, **arguments}),
            training,
            loaded,
        )
    return call_restored(fn, (x,), dict(arguments))


def _pick(
    infer: Callable[[], Any],
    train: Callable[[], Any],
    training: Any,
    loaded: LoadedModel,
) -> Any:
    # TF Hub models trace training=True and training=False as Python bools, so the
    # function is picked here; a symbolic bool chooses between the two with tf.cond.
    if training is None:
        return infer()
    if isinstance(training, bool | np.bool_ | int):
        if not training:
            return infer()
        return _variables.sync_replicas(_model_state(loaded), train())
    return tf.cond(tf.cast(training, tf.bool), train, infer)


def _model_state(loaded: LoadedModel) -> list[keras.Variable]:
    """The variables the model updates itself (BatchNorm statistics, seeds)."""
    return [v for v, s in zip(loaded.variables, loaded.slots, strict=True) if not s.trainable]


def _no_cast(x: Any, dtype: tf.DType) -> Any:
    return x


def where(target: _signatures.Target) -> str:
    """What the layer calls, for messages: ``__call__`` or ``signature 'name'``."""
    return f"signature {target.signature!r}" if target.signature else "__call__"
