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

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from hublayer._backend import require_savedmodel_backend
from hublayer.errors import BackendError, SignatureError
from hublayer.layers import _assets, _inputs, _jax_convert, _shapes, _signatures, _variables
from hublayer.layers._adapters import split_dtype
from hublayer.layers._keras_layer import KerasLayer
from hublayer.layers._lifecycle import _DEFERRED
from hublayer.layers._loading import CallOptions, LoadedModel, load_model

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
        )
        self._arguments = dict(arguments or {})
        self._patterns = _patterns(trainable_patterns)
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
            self._cache.variables = tuple(_placeholder(slot) for slot in slots)
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
        _check_convertible(loaded, handle)
        if not self._cache.variables:
            self._cache.variables, self._slots = loaded.variables, loaded.slots
            for variable in self._cache.variables:
                self._track_variable(variable)
        else:
            _check_same_model(self._slots, loaded.slots, handle)
        self._index = {
            id(v): i for i, v in enumerate(_model_order(loaded.obj, loaded.target.captured))
        }
        if _needs_rng(loaded) and getattr(self, "_seed_generator", None) is None:
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
        chosen = _patterns(patterns)
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
            self._conform_jax(inputs, loaded.target)
        return keras.layers.Layer.__call__(self, *args, **kwargs)

    def _conform_jax(self, inputs: Any, target: _signatures.Target) -> Any:
        """The inputs in the spec's structure, cast as on TensorFlow.

        The check runs on stand-ins with static shapes: while Keras infers an enclosing
        layer's output shape, JAX passes arrays whose batch dimension is symbolic.
        """
        flat = tf.nest.flatten(inputs)
        stand_ins = [_stand_in(x) for x in flat]
        real = {id(p): x for p, x in zip(stand_ins, flat, strict=True)}
        conformed = _inputs.conform_inputs(
            tf.nest.pack_sequence_as(inputs, stand_ins),
            target.input_specs,
            cast=_CastTo,
            where=_where(target),
            handle=self._options.handle_name,
        )

        def restore(leaf: Any) -> Any:
            if isinstance(leaf, _CastTo):
                return keras.ops.cast(real[id(leaf.stand_in)], leaf.dtype.name)
            return real.get(id(leaf), leaf)

        return tf.nest.map_structure(restore, conformed)

    def call(self, inputs: Any, training: Any = None) -> Any:
        """Run the converted model; ``training`` reaches it only while the layer trains."""
        loaded = self._ensure_loaded()
        if isinstance(loaded.obj, keras.Layer):
            return loaded.obj(inputs, training=bool(training) and self._trainable)
        target = loaded.target
        x = self._conform_jax(inputs, target)
        mode = self._mode(target, training)
        function = self._function(loaded, x, mode)
        params = self._params(function)
        extra: dict[str, Any] = dict(self._arguments)
        if function.needs_rng:
            extra["rng"] = self._seed_generator.next()
        if target.signature is not None:
            outputs, updated = function.fn(params, **x, **extra)
        elif target.has_training:
            outputs, updated = function.fn(params, x, training=mode, **extra)
        else:
            outputs, updated = function.fn(params, x, **extra)
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
            if not _matches(concrete, x, mode, target):
                continue
            if key not in self._cache.functions:
                self._cache.functions[key] = _jax_convert.convert(
                    concrete, function_spec, self._index, where=_where(target)
                )
            return self._cache.functions[key]
        raise SignatureError(
            f"Expected inputs for {_where(target)} of handle={self._options.handle_name!r} "
            f"to match a traced function with training={mode}. Received: "
            f"{_inputs.describe(x)}. Feed inputs the model was saved for.",
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
            if not _is_shape(input_shape)
            else keras.KerasTensor(tuple(input_shape))
        )
        return tf.nest.map_structure(lambda t: t.shape, self.compute_output_spec(inputs))

    def load_own_variables(self, store: Any) -> None:
        """Load saved values into the variables (created from the build config)."""
        keras.layers.Layer.load_own_variables(self, store)

    # ------------------------------------------------------------- properties
    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """The declared input shape, batch first: only with a non-float ``dtype``."""
        if self._input_shape is None:
            raise AttributeError("input_shape is only set with input_shape= and dtype=tf.string")
        return (None, *self._input_shape)

    @property
    def handle(self) -> Any:
        """The handle (or object) the layer was built from."""
        return self._options.handle

    @property
    def resolved_object(self) -> Any:
        """The object TensorFlow loaded (its functions are what was converted)."""
        return self._ensure_loaded().obj

    @property
    def input_specs(self) -> tuple[Any, ...]:
        """The model's inputs as :class:`~hublayer._specs.TensorInfo`."""
        return _signatures.tensor_infos(self._ensure_loaded().target.input_specs)

    # ----------------------------------------------------------------- saving
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as the TensorFlow layer writes them."""
        options = self._options
        if not isinstance(options.handle, str | os.PathLike):
            raise NotImplementedError(
                "Expected a handle string to save a KerasLayer's config. Received: a "
                f"handle of type {type(options.handle).__name__}. Pass the model's handle."
            )
        config: dict[str, Any] = keras.layers.Layer.get_config(self)
        config.pop("autocast", None)
        config.update(
            handle=os.fspath(options.handle),
            arguments=_json_checked("arguments", self._arguments),
            signature=options.signature,
            signature_outputs_as_dict=options.as_dict,
            output_key=options.output_key,
            output_shape=_shapes.output_shape_to_config(options.output_shape),
            tags=options.tags,
            trainable_patterns=self._patterns,
            trainable_last_n=self._last_n,
            embed_saved_model=self._embed,
        )
        if options.training_signature is not None:
            config["training_signature"] = options.training_signature
        if self._input_shape is not None:
            config["input_shape"] = list(self._input_shape)
        return config

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

    def save_assets(self, dir_path: str) -> None:
        """Copy the SavedModel's files into the ``.keras`` archive (unless embedding is off)."""
        loaded = self._ensure_loaded()
        source = loaded.source if self._embed else None
        _assets.write_assets(dir_path, source=source, handle=self._options.handle_name)

    def load_assets(self, dir_path: str) -> None:
        """Load the model's functions from the archive's copy (or resolve the handle)."""
        if self._loaded is not None:
            return
        self._owned = _assets.take_embedded(dir_path)
        source = self._owned.path if self._owned is not None else None
        self._adopt(load_model(self._options, source=source))


def _check_convertible(loaded: LoadedModel, handle: str | None) -> None:
    target = loaded.target
    functions = _functions(loaded)
    if not functions:
        raise BackendError(
            "Expected a SavedModel whose __call__ was traced, to convert it for JAX. "
            f"Received: handle={handle!r}, whose __call__ has no traced functions. Use a "
            "signature (signature=...), or the TensorFlow backend (KERAS_BACKEND=tensorflow).",
            backend="jax",
        )
    missing = sorted({op for f in functions for op in _jax_convert.unsupported_ops(f)})
    if missing:
        where = _where(target)
        signatures = sorted(getattr(loaded.obj, "signatures", None) or {})
        raise BackendError(
            f"Expected a model whose ops JAX can run (through tf2jax). Received: "
            f"handle={handle!r}, whose {where} uses ops tf2jax cannot convert: {missing}. "
            "Use the TensorFlow backend (KERAS_BACKEND=tensorflow) for this model, or a "
            f"signature that avoids those ops (signature= one of {signatures}).",
            backend="jax",
        )


def _is_shape(value: Any) -> bool:
    return isinstance(value, tuple | list) and all(d is None or isinstance(d, int) for d in value)


def _functions(loaded: LoadedModel) -> list[Any]:
    target = loaded.target
    if target.signature is not None:
        return [f for f in (target.fn, target.training_fn) if f is not None]
    return list(getattr(loaded.obj.__call__, "concrete_functions", ()) or ())


def _needs_rng(loaded: LoadedModel) -> bool:
    return any(_jax_convert.uses_stateful_random(f) for f in _functions(loaded))


def _check_same_model(
    saved: Sequence[_variables.VariableSlot],
    loaded: Sequence[_variables.VariableSlot],
    handle: str | None,
) -> None:
    expected = [(s.name, s.shape, s.dtype) for s in saved]
    received = [(s.name, s.shape, s.dtype) for s in loaded]
    if expected != received:
        different = [e for e, r in zip(expected, received, strict=False) if e != r][:3]
        raise SignatureError(
            "Expected the model to be the one this layer was saved with. Received: "
            f"handle={handle!r}, whose variables differ ({different or 'in number'}). Point "
            "the handle back at the original model, or save with embed_saved_model=True.",
            handle=handle,
        )


def _model_order(obj: Any, captured: Sequence[tf.Variable]) -> list[tf.Variable]:
    """The model's variables in the order ``_variables.wrap_variables`` gives them."""
    listed = getattr(obj, "trainable_variables", None)
    if listed is None:
        listed = [v for v in captured if v.trainable]
    seen: set[int] = set()
    ordered: list[tf.Variable] = []
    for variable in [*listed, *(getattr(obj, "variables", ()) or ()), *captured]:
        if id(variable) not in seen:
            seen.add(id(variable))
            ordered.append(variable)
    return ordered


def _matches(concrete: Any, x: Any, mode: bool | None, target: _signatures.Target) -> bool:
    args, kwargs = concrete.structured_input_signature
    if target.signature is not None:
        return True
    if mode is not None:
        training = args[1] if len(args) > 1 else kwargs.get("training", False)
        if training is not mode:
            return False
    if not args:
        return False
    try:
        stand_ins = tf.nest.map_structure(_stand_in, x)
        _inputs.conform_inputs(stand_ins, (args[0],), cast=_CastTo, where="", handle=None)
    except SignatureError:
        return False
    return True


def _placeholder(slot: _variables.VariableSlot) -> keras.Variable:
    return keras.Variable(
        initializer="zeros",
        shape=slot.shape,
        dtype=slot.dtype,
        trainable=slot.trainable,
        autocast=False,
        name=_variables.keras_name(slot.name),
    )


class _CastTo:
    """A cast ``conform_inputs`` asked for, applied to the real input afterwards."""

    def __init__(self, stand_in: Any, dtype: tf.DType) -> None:
        self.stand_in, self.dtype = stand_in, dtype


def _stand_in(x: Any) -> Any:
    """A symbolic tensor of ``x``'s dtype and shape (``None`` for a symbolic dimension)."""
    shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    if shape is None or dtype is None or isinstance(x, keras.KerasTensor):
        return x
    dims = tuple(d if isinstance(d, int) else None for d in shape)
    return keras.KerasTensor(dims, dtype=keras.backend.standardize_dtype(dtype))


def _where(target: _signatures.Target) -> str:
    return f"signature {target.signature!r}" if target.signature else "__call__"


def _patterns(value: Sequence[str] | str | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(p) for p in value]


def _json_checked(name: str, value: Any) -> Any:
    try:
        json.dumps(value)
    except TypeError:
        raise ValueError(
            f"Expected KerasLayer({name}=...) to be JSON-serializable to save the layer. "
            f"Received: {name}={value!r}. Use plain numbers, strings, lists and dicts."
        ) from None
    return value


# Save exactly as the TensorFlow layer does, so a .keras file loads on either backend:
# under its registered name (loading goes through KerasLayer.from_config, which builds
# this class again on JAX), and under its class name, from which Keras names the
# layer's folder of weights and assets inside the archive ("layers/keras_layer").
JaxKerasLayer.__name__ = JaxKerasLayer.__qualname__ = "KerasLayer"
keras.saving.register_keras_serializable(package="hublayer", name="KerasLayer")(JaxKerasLayer)
keras.saving.get_custom_objects()["hublayer>KerasLayer"] = KerasLayer
