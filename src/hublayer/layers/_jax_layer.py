"""``KerasLayer`` on the JAX backend: the SavedModel's functions converted with tf2jax.

``hub.KerasLayer(...)`` builds this class when ``KERAS_BACKEND=jax`` (see
``KerasLayer.__new__``). TensorFlow still loads the SavedModel (after the scan); then:

- the model's variables become Keras variables, copied once from TensorFlow, in
  ``tensorflow_hub``'s order (trainable first). They are the only storage: the converted
  functions take them as parameters, so Keras' JAX trainer, every optimizer and
  ``jax.jit`` see ordinary Keras variables;
- each traced function (one per input signature and ``training`` value, or the chosen
  signature) is converted on first use and cached; its unknown batch dimension stays
  unknown, so every batch size works;
- in training mode (the BatchNorm rule: only while the layer trains) the values the model
  assigns (BatchNorm statistics, Dropout seeds) are written back to the non-trainable
  variables, as Keras' own stateful layers do.

Before anything is converted the layer lists the ops tf2jax cannot convert, and refuses
the model with :class:`~hublayer.errors.BackendError` naming them.

The layer saves with the same config and variables as the TensorFlow one, under the same
registered name, so a ``.keras`` file written on either backend loads on the other.

Example:
    >>> import os; os.environ["KERAS_BACKEND"] = "jax"  # doctest: +SKIP
    >>> import hublayer as hub  # doctest: +SKIP
    >>> type(hub.KerasLayer(handle)).__name__  # doctest: +SKIP
    'JaxKerasLayer'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from hublayer._backend import require_savedmodel_backend
from hublayer.errors import BackendError, SignatureError
from hublayer.layers import (
    _assets,
    _inputs,
    _jax_convert,
    _jax_model,
    _shapes,
    _signatures,
    _variables,
)
from hublayer.layers._adapters import split_dtype
from hublayer.layers._keras_layer import KerasLayer
from hublayer.layers._lifecycle import _DEFERRED, refused, refusing
from hublayer.layers._loading import CallOptions, LoadedModel, layer_safe_mode, load_model

__all__ = ["JaxKerasLayer"]


class _Cache:
    """The model's variables and converted functions, outside Keras' attribute tracking
    (the layer tracks the variables itself, once, in the model's order)."""

    def __init__(self) -> None:
        self.variables: tuple[keras.Variable, ...] = ()
        self.functions: dict[tuple[Any, int], _jax_convert.JaxFunction] = {}
        self.regularizers: list[_jax_convert.JaxFunction] | None = None


class JaxKerasLayer(KerasLayer):
    """A TF Hub / Kaggle SavedModel as a Keras 3 layer on the JAX backend.

    Built by ``hublayer.KerasLayer`` under ``KERAS_BACKEND=jax``; takes the same
    arguments (see ``hublayer.KerasLayer``) except ``load_options`` device settings, which
    only matter to TensorFlow.

    Raises:
        BackendError: the model uses ops tf2jax cannot convert (string and hash-table ops
            of text models); the message names them. Or the ``[jax]`` extra is missing.
        SignatureError: a wrong ``signature`` or ``output_key``, or inputs the model
            cannot take.
        NotTrainableError: ``trainable=True`` on a signature or a model without trainable
            variables.

    Example:
        >>> layer = hub.KerasLayer(handle, trainable=True)  # doctest: +SKIP
        >>> model = keras.Sequential([keras.Input((32, 32, 3)), layer, keras.layers.Dense(2)])
        ... # doctest: +SKIP
    """

    def __init__(
        self,
        handle: Any,
        trainable: bool = False,
        arguments: Mapping[str, Any] | None = None,
        signature: str | None = None,
        signature_outputs_as_dict: bool = False,
        output_key: str | None = None,
        output_shape: Any = None,
        tags: Sequence[str] | None = None,
        load_options: Any = None,
        *,
        trainable_patterns: Sequence[str] | str | None = None,
        trainable_last_n: int | None = None,
        training_signature: str | None = None,
        embed_saved_model: bool = True,
        safe_mode: bool | None = None,
        **kwargs: Any,
    ) -> None:
        require_savedmodel_backend("build a KerasLayer")
        kwargs.pop("autocast", None)
        policy, input_dtype = split_dtype(kwargs.pop("dtype", None))
        self._input_shape = kwargs.pop("input_shape", None) if input_dtype else None
        self._options = CallOptions(
            handle=handle,
            tags=list(tags) if tags is not None else None,
            load_options=load_options,
            signature=signature,
            output_key=output_key,
            as_dict=bool(signature_outputs_as_dict),
            output_shape=(
                _shapes.parse_output_shape(output_shape) if output_shape is not None else None
            ),
            arguments=dict(arguments or {}),
            training_signature=training_signature,
            safe_mode=layer_safe_mode(safe_mode),
        )
        self._arguments = dict(arguments or {})
        self._warned: set[str] = set()
        self._patterns = _jax_model.patterns(trainable_patterns)
        self._last_n = trainable_last_n
        _variables.select_trainable(["-"], self._patterns, self._last_n)  # fail early
        self._embed = bool(embed_saved_model)
        self._loaded: LoadedModel | None = None
        self._slots: tuple[_variables.VariableSlot, ...] = ()
        self._index: dict[int, int] = {}
        self._output_spec: Any = None
        self._build_spec: dict[str, Any] | None = None
        self._owned: _assets.OwnedFolder | None = None
        self._cache = _Cache()
        self._seed_generator: Any = None
        # Not KerasLayer.__init__: that one loads for TensorFlow.
        keras.layers.Layer.__init__(
            self, trainable=trainable, dtype=policy, autocast=False, **kwargs
        )
        if not _DEFERRED.get():
            self.build()
            if self._trainable:
                self._check_trainable()

    # ----------------------------------------------------------------- loading
    def build(self, input_shape: Any = None) -> None:
        """Load and check the model (when reloading: create its variables only)."""
        if self._loaded is not None or self._cache.variables:
            return
        spec = self._build_spec or {}
        if "keras_model" in spec:
            model = keras.saving.deserialize_keras_object(spec["keras_model"])
            self._adopt(load_model(self._options, obj=model))
            return
        if "variables" in spec:
            slots = tuple(_variables.VariableSlot.from_config(c) for c in spec["variables"])
            self._slots = slots
            self._cache.variables = tuple(_jax_model.placeholder(slot) for slot in slots)
            for variable in self._cache.variables:
                self._track_variable(variable)
            self._output_spec = _shapes.spec_from_config(spec.get("output_spec"))
            self._apply_trainable()
            if not self._embed:
                self._adopt(load_model(self._options))
            return
        self._adopt(load_model(self._options))

    def _adopt(self, loaded: LoadedModel) -> None:
        handle = self._options.handle_name
        if isinstance(loaded.obj, keras.Layer):
            self._keras_model = loaded.obj  # a native Keras model: nothing to convert
            self._loaded = loaded
            return
        _jax_model.check_convertible(loaded, handle)
        if not self._cache.variables:
            self._cache.variables, self._slots = loaded.variables, loaded.slots
            for variable in self._cache.variables:
                self._track_variable(variable)
        else:
            _jax_model.check_same_model(self._slots, loaded.slots, handle)
        self._index = {
            id(v): i
            for i, v in enumerate(_jax_model.model_order(loaded.obj, loaded.target.captured))
        }
        if _jax_model.needs_rng(loaded) and getattr(self, "_seed_generator", None) is None:
            # Stateful random ops (TF1-era models) draw from a key Keras tracks.
            self._tracker.unlock()
            self._seed_generator = keras.random.SeedGenerator(0, name="seed_generator")
            self._tracker.lock()
        self._output_spec = loaded.output_spec
        self._loaded = loaded
        self._apply_trainable()

    def _ensure_loaded(self) -> LoadedModel:
        if self._loaded is None:
            if not self.built:
                self.build()
            if self._loaded is None:  # reloaded from a config without its archive
                self._adopt(load_model(self._options))
        assert self._loaded is not None
        return self._loaded

    # --------------------------------------------------------------- training
    @property
    def trainable(self) -> bool:
        """Whether the layer trains; setting it keeps the partial fine-tuning selection."""
        return bool(self._trainable)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        if value and getattr(self, "_loaded", None) is not None:
            self._check_trainable()
        keras.layers.Layer.trainable.fset(self, bool(value))  # type: ignore[attr-defined]
        self._apply_trainable()

    def unfreeze(
        self, patterns: Sequence[str] | str | None = None, *, last_n: int | None = None
    ) -> None:
        """Make the layer trainable: all of the model's trainable variables, or a selection.

        Example:
            >>> layer.unfreeze(last_n=2)  # doctest: +SKIP
        """
        chosen = _jax_model.patterns(patterns)
        _variables.select_trainable(["-"], chosen, last_n)
        previous = (self._patterns, self._last_n)
        self._patterns, self._last_n = chosen, last_n
        try:
            self.trainable = True
        except Exception:
            self._patterns, self._last_n = previous
            self._apply_trainable()
            raise

    @property
    def variable_paths(self) -> tuple[str, ...]:
        """The model's names of :attr:`weights` (``"block_1/conv/kernel"``), in that order."""
        return tuple(slot.path for slot in self._slots)

    def _selection(self) -> list[bool]:
        paths = [slot.path for slot in self._slots if slot.trainable]
        chosen = iter(_variables.select_trainable(paths, self._patterns, self._last_n))
        return [slot.trainable and next(chosen) for slot in self._slots]

    def _apply_trainable(self) -> None:
        if not getattr(self, "_slots", ()):
            return
        for variable, selected in zip(self._cache.variables, self._selection(), strict=True):
            variable.trainable = bool(self._trainable and selected)

    def _check_trainable(self) -> None:
        loaded = self._ensure_loaded()
        if isinstance(loaded.obj, keras.Layer):
            return
        _signatures.check_trainable(
            loaded.target,
            loaded.hub_v1,
            self._options.handle_name,
            selected=any(self._selection()),
            selection=self._patterns is not None or self._last_n is not None,
        )

    # ------------------------------------------------------------------- call
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Check the inputs first, so a mismatch raises :class:`SignatureError` itself."""
        loaded = self._loaded
        inputs = args[0] if args else kwargs.get("inputs")
        if loaded is not None and inputs is not None and not isinstance(loaded.obj, keras.Layer):
            _jax_model.conform(inputs, loaded.target, self._options.handle_name)
        return keras.layers.Layer.__call__(self, *args, **kwargs)

    def call(self, inputs: Any, training: Any = None) -> Any:
        """Run the converted model; ``training`` reaches it only while the layer trains."""
        loaded = self._ensure_loaded()
        if isinstance(loaded.obj, keras.Layer):
            return loaded.obj(inputs, training=bool(training) and self._trainable)
        target = loaded.target
        x = _jax_model.conform(inputs, target, self._options.handle_name)
        mode = self._mode(target, training)
        size = _jax_model.slices_needed(x, getattr(target, "fixed_batch", None), mode)
        function = self._function(loaded, _jax_model.first(x, size), mode)
        params = self._params(function)
        extra: dict[str, Any] = dict(self._arguments)
        if function.needs_rng:
            extra["rng"] = self._seed_generator.next()

        def run(x: Any) -> Any:
            if target.signature is not None:
                return function.fn(params, **x, **extra)
            if target.has_training:
                return function.fn(params, x, training=mode, **extra)
            return function.fn(params, x, **extra)

        if size is not None:  # traced for a fixed batch size: slices of it, in inference
            outputs, updated = _jax_model.map_slices(lambda c: run(c)[0], x, size), {}
        else:
            outputs, updated = run(x)
        if mode and function.assigns:
            self._write_back(function, updated)
        result = _signatures.select_output(
            outputs, loaded.output_key, target.signature, self._options.handle_name
        )
        if self._trainable:
            for loss in self._regularization_losses(loaded):
                self.add_loss(loss)
        return tf.nest.map_structure(self._cast_output, result)

    def _mode(self, target: _signatures.Target, training: Any) -> bool | None:
        if target.signature is not None and target.training_fn is None:
            return None
        if target.signature is None and not target.has_training:
            return None
        if not self._trainable or training is None:
            return False
        if isinstance(training, bool | np.bool_ | int):
            return bool(training)
        raise BackendError(
            "Expected training to be a Python bool on the JAX backend (a SavedModel traced "
            f"training=True and training=False separately). Received: training={training!r}. "
            "Pass True or False.",
            backend="jax",
        )

    def _function(self, loaded: LoadedModel, x: Any, mode: bool | None) -> Any:
        target = loaded.target
        if target.signature is not None:
            trains = mode and target.training_fn is not None
            candidates = [target.training_fn if trains else target.fn]
            mode = bool(trains)
            function_spec = None
        else:
            call = loaded.obj.__call__
            candidates = list(call.concrete_functions)
            function_spec = call.function_spec
        for position, concrete in enumerate(candidates):
            key = (mode, position)
            if not _jax_model.matches(concrete, x, mode, target):
                continue
            if key not in self._cache.functions:
                self._cache.functions[key] = _jax_convert.convert(
                    concrete, function_spec, self._index, where=_jax_model.where(target)
                )
            return self._cache.functions[key]
        fix = "Feed inputs the model was saved for."
        fixed = getattr(target, "fixed_batch", None)
        if fixed is not None:
            fix = (
                f"The model was traced for batches of exactly {fixed}: on JAX, only "
                "inference maps other batch sizes over slices; train with batches of "
                f"{fixed} (batch_size={fixed}), or use KERAS_BACKEND=tensorflow."
            )
        raise SignatureError(
            f"Expected inputs for {_jax_model.where(target)} of "
            f"handle={self._options.handle_name!r} "
            f"to match a traced function with training={mode}. Received: "
            f"{_inputs.describe(x)}. {fix}",
            handle=self._options.handle_name,
        )

    def _params(self, function: _jax_convert.JaxFunction) -> dict[str, Any]:
        params = {
            name: self._cache.variables[self._index[id(v)]].value
            for name, v in function.variables.items()
        }
        params.update(function.constants)
        return params

    def _write_back(self, function: _jax_convert.JaxFunction, updated: Mapping[str, Any]) -> None:
        for name, v in function.variables.items():
            position = self._index[id(v)]
            if not self._slots[position].trainable:  # the model's own state
                self._cache.variables[position].assign(updated[name])

    def _regularization_losses(self, loaded: LoadedModel) -> list[Any]:
        if self._cache.regularizers is None:
            converted = []
            for loss in loaded.regularizers:
                for concrete in getattr(loss, "concrete_functions", ())[:1]:
                    spec = getattr(loss, "function_spec", None)
                    converted.append(
                        _jax_convert.convert(concrete, spec, self._index, where="a regularizer")
                    )
            self._cache.regularizers = converted
        return [function.fn(self._params(function))[0] for function in self._cache.regularizers]

    def _cast_output(self, x: Any) -> Any:
        dtype = getattr(x, "dtype", None)
        target = self.compute_dtype
        if dtype is None or not keras.backend.is_float_dtype(dtype):
            return x
        if target is None or not keras.backend.is_float_dtype(target):
            return x
        return x if keras.backend.standardize_dtype(dtype) == target else keras.ops.cast(x, target)

    def compute_output_spec(self, inputs: Any, training: Any = None) -> Any:
        """The output spec the model declares, with the inputs' batch size; nothing runs."""
        if self._output_spec is None:
            return keras.layers.Layer.compute_output_spec(self, inputs, training=training)
        return _shapes.keras_tensors(self._output_spec, inputs, self.compute_dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        """The output shape(s), from :meth:`compute_output_spec`."""
        inputs = (
            tf.nest.map_structure(
                lambda shape: keras.KerasTensor(tuple(shape)),
                input_shape,
                check_types=False,
            )
            if not _jax_model.is_shape(input_shape)
            else keras.KerasTensor(tuple(input_shape))
        )
        return tf.nest.map_structure(lambda t: t.shape, self.compute_output_spec(inputs))

    def load_own_variables(self, store: Any) -> None:
        """Load saved values into the variables (created from the build config)."""
        keras.layers.Layer.load_own_variables(self, store)

    # ----------------------------------------------------------------- saving
    def get_build_config(self) -> dict[str, Any]:
        """The variables and output spec, in the TensorFlow layer's format."""
        loaded = self._ensure_loaded()
        if isinstance(loaded.obj, keras.Layer):
            return {"keras_model": keras.saving.serialize_keras_object(loaded.obj)}
        return {
            "variables": [slot.to_config() for slot in self._slots],
            "output_spec": _shapes.spec_to_config(self._output_spec),
        }

    def build_from_config(self, config: dict[str, Any]) -> None:
        """Create the variables from :meth:`get_build_config` (their values load next)."""
        self._build_spec = dict(config) if config else None
        self.build()

    def load_assets(self, dir_path: str) -> None:
        """Load the model's functions from the archive's copy (or resolve the handle)."""
        refused(self)  # a refusal stays (see ModelLayer.load_assets)
        if self._loaded is not None:
            return
        with refusing(self):
            self._owned = _assets.take_embedded(
                dir_path, self._options.handle, self._options.safe_mode
            )
            source = self._owned.path if self._owned is not None else None
            self._adopt(load_model(self._options, source=source))


# Save exactly as the TensorFlow layer does, so a .keras file loads on either backend:
# under its registered name (loading goes through KerasLayer.from_config, which builds
# this class again on JAX), and under its class name, from which Keras names the
# layer's folder of weights and assets inside the archive ("layers/keras_layer").
JaxKerasLayer.__name__ = JaxKerasLayer.__qualname__ = "KerasLayer"
keras.saving.register_keras_serializable(package="hublayer", name="KerasLayer")(JaxKerasLayer)
keras.saving.get_custom_objects()["hublayer>KerasLayer"] = KerasLayer
