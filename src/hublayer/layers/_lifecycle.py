"""The life of a layer's model: load, build from a saved config, save, reload.

How a layer gets its model::

    KerasLayer(handle)            __init__ -> build() -> load_model(): resolve, load, wrap
    keras.models.load_model(...)  from_config (nothing loaded)
                                  -> build_from_config: the op libraries the model needs
                                     (TensorFlow Text), then placeholder variables from
                                     the saved build config (so compile() and the
                                     optimizer see them)
                                  -> load_own_variables: saved values kept aside
                                  -> load_assets: load the embedded copy (or resolve the
                                     handle) into the placeholders, then apply the values

:class:`ModelLayer` is the base of ``KerasLayer``: it holds this life cycle and which of
the model's variables train (the partial fine-tuning selection), and reports the
SavedModel's regularization losses, so ``_keras_layer.py`` holds the calling side.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np

from hublayer import _foreign_keras
from hublayer.layers import _assets, _shapes, _variables
from hublayer.layers._loading import CallOptions, LoadedModel, PendingModel
from hublayer.layers._runner import Runner
from hublayer.models import library_ops, require_op_libraries

__all__ = ["ModelLayer", "refused", "refusing"]

# Set by from_config: build the layer without loading; Keras then calls build_from_config.
_DEFERRED: contextvars.ContextVar[bool] = contextvars.ContextVar("hublayer_deferred", default=False)
#: Constructor arguments a saved config never carries: what weakens or steers loading is
#: chosen by whoever loads the file, not by the file.
_LOAD_TIME_ONLY = frozenset({"safe_mode", "load_options"})


class ModelLayer(keras.layers.Layer):
    """A Keras layer that holds a loaded model: its life cycle and its trainable selection.

    Subclasses set the attributes below in ``__init__`` before calling
    ``super().__init__``. Not meant to be used on its own: see ``hublayer.KerasLayer``.

    Example:
        >>> import hublayer as hub
        >>> issubclass(hub.KerasLayer, ModelLayer)
        True
    """

    _options: CallOptions
    _arguments: dict[str, Any]
    _patterns: list[str] | None
    _last_n: int | None
    _embed: bool
    _input_shape: Any
    _loaded: LoadedModel | None
    _pending: PendingModel | None
    _build_spec: dict[str, Any] | None
    _stash: list[np.ndarray] | None
    _owned: _assets.OwnedFolder | None
    _runner: Runner

    # ----------------------------------------------------------------- loading
    def build(self, input_shape: Any = None) -> None:
        """Load the model (when reloading: create its variables only); no-op once done."""
        if self._loaded is not None or self._pending is not None:
            return
        spec = self._build_spec or {}
        if "keras_model" in spec:  # a reloaded .keras handle: Keras rebuilds it from config
            model = keras.saving.deserialize_keras_object(spec["keras_model"])
            self._set_loaded(self._load(obj=model))
            return
        if "variables" in spec:
            slots = tuple(_variables.VariableSlot.from_config(c) for c in spec["variables"])
            variables = tuple(_variables.placeholders(slots))
            for variable in variables:
                self._track_variable(variable)
            output_spec = _shapes.spec_from_config(spec.get("output_spec"))
            self._pending = PendingModel(variables, slots, output_spec)
            self._apply_trainable()
            if not self._embed:  # no copy in the archive: resolve the handle now
                self._set_loaded(self._load(pending=self._pending))
            return
        self._set_loaded(self._load())

    def _load(
        self, *, source: Path | None = None, pending: PendingModel | None = None, obj: Any = None
    ) -> LoadedModel:
        """Load through the backend's runner (the one place a layer loads)."""
        return self._runner.load(self, self._options, source=source, pending=pending, obj=obj)

    def _set_loaded(self, loaded: LoadedModel) -> LoadedModel:
        if isinstance(loaded.obj, keras.Layer):
            self._keras_model = loaded.obj  # a sublayer: Keras saves and trains it
        elif self._pending is None or not self._pending.variables:
            for variable in loaded.variables:
                self._track_variable(variable)
        if not isinstance(loaded.obj, keras.Layer):
            self._resolved = loaded.obj  # tracked by TF, so model.export keeps its resources
        self._loaded, self._pending = loaded, None
        if self._stash is not None:
            stash, self._stash = self._stash, None
            if len(stash) != len(loaded.variables):
                raise ValueError(
                    f"Expected {len(loaded.variables)} saved values for the variables of "
                    f"handle={self._options.handle_name!r}. Received: {len(stash)}. The "
                    "weights file belongs to a different model."
                )
            for variable, value in zip(loaded.variables, stash, strict=True):
                variable.assign(value)
        self._apply_trainable()
        return loaded

    def _ensure_loaded(self) -> LoadedModel:
        if self._loaded is not None:
            return self._loaded
        refused(self)
        if not self.built:
            self.build()
        if self._loaded is not None:
            return self._loaded
        # Pending, and load_assets never came (a config without its archive): resolve.
        # Remembered: should the archive's copy come after all, load_assets refuses.
        object.__setattr__(self, "_from_handle_early", True)
        return self._set_loaded(self._load(pending=self._pending))

    # --------------------------------------------------------------- selection
    def _selection(self) -> list[bool]:
        state = self._loaded or self._pending
        if state is None:
            return []
        paths = [slot.path for slot in state.slots if slot.trainable]
        chosen = iter(_variables.select_trainable(paths, self._patterns, self._last_n))
        return [slot.trainable and next(chosen) for slot in state.slots]

    def _apply_trainable(self) -> None:
        state = getattr(self, "_loaded", None) or getattr(self, "_pending", None)
        if state is None:
            return
        for variable, selected in zip(state.variables, self._selection(), strict=True):
            variable.trainable = self._trainable and selected

    @_foreign_keras.own_losses_hook  # Keras' private hook, checked against its version
    def _get_own_losses(self) -> list[Any]:
        """Keras's own-loss hook, plus the SavedModel's regularization losses (0 if frozen).

        Read by ``layer.losses``, ``model.losses`` and ``fit`` at any time, so the losses
        show before the first call and follow ``trainable`` at once. On JAX the runner
        evaluates the converted loss functions on the layer's variables; Keras' trainer
        reads this inside its stateless scope, so the losses have gradients there too.
        """
        own = _foreign_keras.parent_own_losses(super())
        loaded = self._loaded
        if loaded is None or not loaded.regularizers:
            return own
        return own + self._runner.losses(loaded, trainable=self.trainable)

    # ----------------------------------------------------------------- saving
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments; round-trips through ``from_config``.

        Raises:
            NotImplementedError: the layer wraps a model object, not a handle.
            ValueError: ``arguments`` or ``output_shape`` are not JSON-serializable.
        """
        options = self._options
        if isinstance(options.handle, str | os.PathLike):
            handle = os.fspath(options.handle)
        else:
            raise NotImplementedError(
                "Expected a handle string to save a KerasLayer's config. Received: a "
                f"handle of type {type(options.handle).__name__}. Pass the model's handle "
                "(a path or URL), or write the object with hublayer.export_saved_model and "
                "pass that folder."
            )
        config: dict[str, Any] = super().get_config()
        config.pop("autocast", None)
        config.update(
            handle=handle,
            arguments=_json_checked("arguments", self._arguments),
            signature=options.signature,
            signature_outputs_as_dict=options.as_dict,
            output_key=options.output_key,
            output_shape=_shapes.output_shape_to_config(options.output_shape),
            tags=options.tags,
            trainable_patterns=self._patterns,
            trainable_last_n=self._last_n,
            training_signature=options.training_signature,
            embed_saved_model=self._embed,
        )
        if self._input_shape is not None:
            config["input_shape"] = list(self._input_shape)
        for name in _LOAD_TIME_ONLY:  # never written, so no file can carry them
            config.pop(name, None)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        """Rebuild from :meth:`get_config`; the model loads on build, or from the archive.

        ``safe_mode`` and ``load_options`` are load-time arguments: a config never sets
        them (get_config does not write them, and a ``config.json`` that carries
        ``safe_mode: false`` must not switch its own scan off), so they are dropped here.
        The scan then follows ``keras.saving.load_model(..., safe_mode=...)`` and
        ``$HUBLAYER_SAFE_MODE``.
        """
        config = {k: v for k, v in config.items() if k not in _LOAD_TIME_ONLY}
        token = _DEFERRED.set(True)
        try:
            layer = super().from_config(config)
        finally:
            _DEFERRED.reset(token)
        return layer

    def get_build_config(self) -> dict[str, Any]:
        """What a reload needs before the model's files arrive: variables and output spec."""
        loaded = self._ensure_loaded()
        if isinstance(loaded.obj, keras.Layer):
            return {"keras_model": keras.saving.serialize_keras_object(loaded.obj)}
        output_spec = _shapes.spec_to_config(loaded.output_spec)
        # Ops of op libraries (TensorFlow Text): a reload registers them first.
        ops = {"library_ops": found} if (found := library_ops(loaded.source)) else {}
        if any(slot.index < 0 for slot in loaded.slots):
            # Variables the loader creates out of sight (TF1 graphs): the layer cannot make
            # placeholders for them, so it adds them when the files arrive. Such models
            # are inference-only, so no optimizer needs them earlier.
            return {"output_spec": output_spec, **ops}
        return {
            "variables": [slot.to_config() for slot in loaded.slots],
            "output_spec": output_spec,
            **ops,
        }

    def build_from_config(self, config: dict[str, Any]) -> None:
        """Create placeholder variables from :meth:`get_build_config` (or load, without one).

        Raises:
            MissingExtraError: the model's ops need an op library that is not installed
                (raised here, as Keras would turn it into a ValueError in load_assets).
        """
        config = dict(config or {})
        listed = config.pop("library_ops", None)
        ops = [op for op in listed if isinstance(op, str)] if isinstance(listed, list) else []
        # Only libraries hublayer knows are imported, whatever op names a file lists.
        require_op_libraries(ops, handle=self._options.handle_name)
        self._build_spec = config or None
        if self._build_spec is not None and set(self._build_spec) == {"output_spec"}:
            # Not built yet on purpose: the variables are added when the model loads.
            spec = _shapes.spec_from_config(self._build_spec["output_spec"])
            self._pending = PendingModel((), (), spec)
            if not self._embed:
                self._set_loaded(self._load())
            return
        self.build()

    def save_assets(self, dir_path: str) -> None:
        """Copy the wrapped model's files into the ``.keras`` archive (unless embedding is off)."""
        loaded = self._ensure_loaded()
        source = loaded.source if self._embed else None
        _assets.write_assets(dir_path, source=source, handle=self._options.handle_name)

    def load_assets(self, dir_path: str) -> None:
        """Load the model from the archive's copy, or resolve the handle if it has none.

        A refusal (an unsafe or damaged embedded copy) stays: Keras visits a layer under
        more than one path and forgives a failure that a later visit does not repeat, and
        a later visit finds no copy there and would resolve the handle instead.
        """
        refused(self)
        if self._pending is None:
            if getattr(self, "_from_handle_early", False) and self._embed:
                with refusing(self):
                    _assets.refuse_late_copy(dir_path, self._options.handle_name)
            return
        with refusing(self):
            self._owned = _assets.take_embedded(
                dir_path, self._options.handle, self._options.safe_mode
            )
            source = self._owned.path if self._owned is not None else None
            self._set_loaded(self._load(source=source, pending=self._pending))

    def load_own_variables(self, store: Any) -> None:
        """Load saved values; while the model's files are pending, keep them until then."""
        if self._pending is None:
            super().load_own_variables(store)
            return
        if self._pending.variables:
            self._check_load_own_variables(store)
        self._stash = [np.asarray(store[str(i)]) for i in range(len(store.keys()))]


def refused(layer: keras.layers.Layer) -> None:
    """Raise again the error that refused the layer's archived model, if one did."""
    error = getattr(layer, "_refused", None)
    if error is not None:
        raise error


@contextlib.contextmanager
def refusing(layer: keras.layers.Layer) -> Iterator[None]:
    """Remember an error raised while the layer loads its archived model (see
    :meth:`ModelLayer.load_assets`)."""
    try:
        yield
    except Exception as error:
        object.__setattr__(layer, "_refused", error)
        raise


def _json_checked(name: str, value: Any) -> Any:
    try:
        json.dumps(value)
    except TypeError:
        raise ValueError(
            f"Expected KerasLayer({name}=...) to be JSON-serializable to save the layer. "
            f"Received: {name}={value!r}. Use plain numbers, strings, lists and dicts."
        ) from None
    return value
