"""``KerasLayer``'s model on the JAX backend: the SavedModel's functions converted with tf2jax.

TensorFlow still loads the SavedModel (after the scan); then:

- the model's variables become the layer's Keras variables, copied once from TensorFlow,
  in ``tensorflow_hub``'s order (trainable first). They are the only storage: the
  converted functions take their values as parameters, so Keras' JAX trainer, every
  optimizer and ``jax.jit`` see ordinary Keras variables;
- each traced function (one per input signature and ``training`` value, or the chosen
  signature) is converted on first use and cached; its unknown batch dimension stays
  unknown, so every batch size works;
- in training mode (the BatchNorm rule: only while the layer trains) the values the model
  assigns (BatchNorm statistics, Dropout seeds) are written back to the non-trainable
  variables, as Keras' own stateful layers do.

Before anything is converted the runner lists the ops tf2jax cannot convert, and refuses
the model with :class:`~hublayer.errors.BackendError` naming them.

Trainable variables: the layer tracks exactly the Keras variables :meth:`JaxRunner.load`
returns, so ``layer.trainable_weights`` lists every trainable model variable on JAX as on
TensorFlow, and one SGD step with a sensible loss moves each of them (checked in
``tests/test_keras_layer_jax.py``). An earlier "an SGD step on EfficientNet-Lite0 moved 0
of 147 weights" on JAX was the test's loss, not this tracking:
``sparse_categorical_crossentropy`` on a Dense head without softmax clips a true class
whose raw output is not positive to p=1e-7, and the gradient of a clipped value is 0
(which heads do depends on the random init; ``from_logits=True`` fixes it).

Example:
    >>> import os; os.environ["KERAS_BACKEND"] = "jax"  # doctest: +SKIP
    >>> import hublayer as hub  # doctest: +SKIP
    >>> type(hub.KerasLayer(handle)._runner).__name__  # doctest: +SKIP
    'JaxRunner'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from hublayer import _foreign_keras
from hublayer.errors import BackendError, SignatureError
from hublayer.layers import _batching, _inputs, _jax_convert, _jax_model, _signatures
from hublayer.layers._loading import CallOptions, LoadedModel, PendingModel, load_model

__all__ = ["JaxRunner"]


class JaxRunner:
    """The :class:`~hublayer.layers._runner.Runner` of the JAX backend (one per layer).

    It holds what conversion produced, outside Keras' attribute tracking: the converted
    functions, the position of each of the model's ``tf.Variable`` s among the layer's
    variables, and the seed generator of models with stateful random ops.
    """

    def __init__(self) -> None:
        self._functions: dict[tuple[Any, int], _jax_convert.JaxFunction] = {}
        self._regularizers: list[_jax_convert.JaxFunction] | None = None
        self._index: dict[int, int] = {}
        self._seed: keras.random.SeedGenerator | None = None
        self._handle: str | None = None

    def load(
        self,
        layer: keras.Layer | None,
        options: CallOptions,
        *,
        source: Path | None = None,
        pending: PendingModel | None = None,
        obj: Any = None,
    ) -> LoadedModel:
        """Load with TensorFlow, check every op converts, and index the model's variables.

        With ``pending``, the model must be the one the placeholders were saved from;
        they stay the layer's variables (TensorFlow's own copies become parameters'
        sources only through the index).

        Raises:
            BackendError: the model uses ops tf2jax cannot convert (named).
            SignatureError: ``pending`` was saved from another model.
        """
        loaded = load_model(options, source=source, obj=obj)
        self._handle = options.handle_name
        if isinstance(loaded.obj, keras.Layer):
            return loaded  # a native Keras model: nothing to convert
        handle = options.handle_name
        _jax_model.check_convertible(loaded, handle)
        if pending is not None and pending.variables:
            _jax_model.check_same_model(pending.slots, loaded.slots, handle)
            loaded = dataclasses.replace(loaded, variables=pending.variables, slots=pending.slots)
        self._index = {
            id(v): i
            for i, v in enumerate(_jax_model.model_order(loaded.obj, loaded.target.captured))
        }
        self._functions, self._regularizers = {}, None
        if _jax_model.needs_rng(loaded) and layer is not None:
            self._seed = _seed_generator(layer)
        return loaded

    def accept(self, inputs: Any, target: _signatures.Target, handle: str | None) -> Any:
        """Check the inputs (on stand-ins, so symbolic batch sizes pass); pass them on."""
        _jax_model.conform(inputs, target, handle)
        return inputs

    def conform(self, inputs: Any, target: _signatures.Target, handle: str | None) -> Any:
        """The inputs in the spec's structure, cast with ``keras.ops.cast``."""
        return _jax_model.conform(inputs, target, handle)

    def run(
        self,
        loaded: LoadedModel,
        x: Any,
        *,
        training: Any,
        arguments: Mapping[str, Any],
        slices: int | None,
    ) -> Any:
        """Run the converted function; in training mode, write the model's state back."""
        if isinstance(loaded.obj, keras.Layer):
            return loaded.obj(x, training=bool(training))
        target = loaded.target
        mode = _mode(target, training)
        if slices is not None and mode:
            raise _fixed_batch_error(target, x, mode, self._handle)
        function = self._function(loaded, _batching.first(x, slices), mode)
        params = self._params(loaded, function)
        extra: dict[str, Any] = dict(arguments)
        if function.needs_rng and self._seed is not None:
            extra["rng"] = self._seed.next()

        def call(x: Any) -> Any:
            if target.signature is not None:
                return function.fn(params, **x, **extra)
            if target.has_training:
                return function.fn(params, x, training=mode, **extra)
            return function.fn(params, x, **extra)

        if slices is not None:  # traced for a fixed batch size: slices of it, in inference
            return _batching.map_slices(lambda part: call(part)[0], x, slices)
        outputs, updated = call(x)
        if mode and function.assigns:
            for name, v in function.variables.items():
                position = self._index[id(v)]
                if not loaded.slots[position].trainable:  # the model's own state
                    loaded.variables[position].assign(updated[name])
        return outputs

    def losses(self, loaded: LoadedModel, *, trainable: bool) -> list[Any]:
        """The converted loss functions on the layer's variables while ``trainable``, else 0.

        Read by Keras inside its stateless scope during ``fit``, where each variable's
        value is the one being differentiated, so the losses have gradients.
        """
        if not loaded.regularizers:
            return []
        if not trainable:
            return [keras.ops.zeros((), "float32") for _ in loaded.regularizers]
        if self._regularizers is None:
            converted = []
            for loss in loaded.regularizers:
                for concrete in getattr(loss, "concrete_functions", ())[:1]:
                    spec = getattr(loss, "function_spec", None)
                    converted.append(
                        _jax_convert.convert(concrete, spec, self._index, where="a regularizer")
                    )
            self._regularizers = converted
        return [f.fn(self._params(loaded, f))[0] for f in self._regularizers]

    def _function(self, loaded: LoadedModel, x: Any, mode: bool | None) -> Any:
        target = loaded.target
        if target.signature is not None:
            trains = bool(mode and target.training_fn is not None)
            candidates = [target.training_fn if trains else target.fn]
            mode, function_spec = trains, None
        else:
            call = loaded.obj.__call__
            candidates = list(call.concrete_functions)
            function_spec = call.function_spec
        for position, concrete in enumerate(candidates):
            key = (mode, position)
            if not _jax_model.matches(concrete, x, mode, target):
                continue
            if key not in self._functions:
                self._functions[key] = _jax_convert.convert(
                    concrete, function_spec, self._index, where=_jax_model.where(target)
                )
            return self._functions[key]
        raise _fixed_batch_error(target, x, mode, self._handle)

    def _params(self, loaded: LoadedModel, function: _jax_convert.JaxFunction) -> dict[str, Any]:
        params = {
            name: loaded.variables[self._index[id(v)]].value
            for name, v in function.variables.items()
        }
        params.update(function.constants)
        return params


def _mode(target: _signatures.Target, training: Any) -> bool | None:
    """The ``training`` value the converted function is traced for (``None``: it has none)."""
    if target.signature is not None and target.training_fn is None:
        return None
    if target.signature is None and not target.has_training:
        return None
    if training is None:
        return False
    if isinstance(training, bool | np.bool_ | int):
        return bool(training)
    raise BackendError(
        "Expected training to be a Python bool on the JAX backend (a SavedModel traced "
        f"training=True and training=False separately). Received: training={training!r}. "
        "Pass True or False.",
        backend="jax",
    )


def _fixed_batch_error(
    target: _signatures.Target, x: Any, mode: bool | None, handle: str | None
) -> SignatureError:
    fix = "Feed inputs the model was saved for."
    fixed = target.fixed_batch
    if fixed is not None:
        fix = (
            f"The model was traced for batches of exactly {fixed}: on JAX, only "
            "inference maps other batch sizes over slices; train with batches of "
            f"{fixed} (batch_size={fixed}), or use KERAS_BACKEND=tensorflow."
        )
    return SignatureError(
        f"Expected inputs for {_jax_model.where(target)} of handle={handle!r} "
        f"to match a traced function with training={mode}. Received: "
        f"{_inputs.describe(x)}. {fix}",
        handle=handle,
    )


def _seed_generator(layer: keras.Layer) -> keras.random.SeedGenerator:
    """The layer's seed generator for stateful random ops (TF1-era models), tracked by Keras."""
    existing = getattr(layer, "_seed_generator", None)
    if existing is not None:
        return existing
    with _foreign_keras.tracking_unlocked(layer):  # Keras locks a built layer's state
        generator = keras.random.SeedGenerator(0, name="seed_generator")
        layer._seed_generator = generator
    return generator
