"""From a handle to what a ``KerasLayer`` calls: the loaded object, its function, its variables.

:func:`load_model` is the one place a layer loads: it resolves the handle (or takes the
embedded copy of a reloaded ``.keras`` file), loads it, applies TF Hub's defaults for TF1
Hub modules, picks the function to call, and either wraps the model's variables or loads
them into the placeholders of a :class:`PendingModel`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from hublayer import _foreign_keras
from hublayer.errors import SignatureError
from hublayer.layers import _shapes, _signatures, _variables
from hublayer.models import is_hub_module_v1, load_path, resolve_handle

__all__ = ["CallOptions", "LoadedModel", "PendingModel", "layer_safe_mode", "load_model"]


@dataclass(frozen=True)
class CallOptions:
    """The constructor arguments that decide what is loaded and called."""

    handle: Any
    tags: list[str] | None
    load_options: Any
    signature: str | None
    output_key: str | None
    as_dict: bool
    output_shape: Any
    arguments: Mapping[str, Any] = field(default_factory=dict)
    training_signature: str | None = None
    #: ``False`` loads without the scan; ``None`` follows $HUBLAYER_SAFE_MODE (and, while
    #: ``keras.saving.load_model(..., safe_mode=False)`` runs, Keras's own choice).
    safe_mode: bool | None = None

    @property
    def handle_name(self) -> str | None:
        """The handle as a string for messages (the type name for a model object)."""
        if isinstance(self.handle, str | os.PathLike):
            return os.fspath(self.handle)
        return type(self.handle).__name__


@dataclass(frozen=True)
class LoadedModel:
    """Everything a layer knows once its model is loaded.

    Attributes:
        obj: the loaded object (or the callable / Keras model passed in).
        target: the function called, with its specs.
        output_key: the output picked from a dict (TF1 Hub modules default to ``"default"``).
        variables: Keras variables sharing storage with the model's, in TF Hub's order.
        slots: their descriptions, in the same order.
        regularizers: zero-argument callables returning scalar losses.
        output_spec: the layer's output spec (after ``output_key`` and ``output_shape``).
        source: the model folder, copied into ``.keras`` archives; ``None`` for objects.
        hub_v1: whether the model is in the TF1 Hub format, or another TF1 graph
            (not fine-tunable).
    """

    obj: Any
    target: _signatures.Target
    output_key: str | None
    variables: tuple[keras.Variable, ...]
    slots: tuple[_variables.VariableSlot, ...]
    regularizers: tuple[Callable[[], Any], ...]
    output_spec: Any
    source: Path | None
    hub_v1: bool


@dataclass(frozen=True)
class PendingModel:
    """A reloaded layer whose variables exist but whose model files have not arrived yet."""

    variables: tuple[keras.Variable, ...]
    slots: tuple[_variables.VariableSlot, ...]
    output_spec: Any


def load_model(
    options: CallOptions,
    *,
    source: Path | None = None,
    pending: PendingModel | None = None,
    obj: Any = None,
) -> LoadedModel:
    """Load the model for a layer.

    Args:
        options: what to load and call.
        source: a folder to load instead of resolving the handle (an embedded copy).
        pending: placeholders to load the variables into, or ``None`` to wrap new ones.
        obj: an object to use instead of loading anything (a reloaded ``.keras`` model).

    Returns:
        The :class:`LoadedModel`. New Keras variables (``pending is None``) are not yet
        tracked by any layer.

    Raises:
        SignatureError: a wrong signature or output key, or a model that is not the one
            the pending placeholders were saved from.
        ValueError: ``tags`` or ``load_options`` with a model object.
    """
    handle = options.handle_name
    path: Path | None = None
    created: list[tf.Variable] = []
    # Eagerly (even when first called inside a traced function), and outside any layer's
    # name scope, so the model's variables keep their own names.
    with tf.init_scope(), tf.name_scope(""):
        if obj is not None:
            pass
        elif not isinstance(options.handle, str | os.PathLike):
            if options.tags is not None or options.load_options is not None:
                raise ValueError(
                    "Expected tags=None and load_options=None with a model object. Received: "
                    f"tags={options.tags!r}, load_options={options.load_options!r}. Drop "
                    "them, or pass the model's handle instead of the object."
                )
            obj = options.handle
        else:
            path = source if source is not None else resolve_handle(options.handle)
            if pending is None or not pending.variables:
                with _variables.recording_creation() as created:
                    obj = load_path(
                        path,
                        options.tags,
                        options.load_options,
                        handle=handle,
                        safe_mode=options.safe_mode,
                    )
            else:
                targets = {
                    slot.index: variable.value
                    for slot, variable in zip(pending.slots, pending.variables, strict=True)
                    if slot.index >= 0
                }
                with _variables.creating_into(targets, handle=handle):
                    obj = load_path(
                        path,
                        options.tags,
                        options.load_options,
                        handle=handle,
                        safe_mode=options.safe_mode,
                    )
        hub_v1 = bool(getattr(obj, "_is_hub_module_v1", False)) or (
            path is not None and path.is_dir() and is_hub_module_v1(path)
        )
        signature, output_key = options.signature, options.output_key
        if signature is None and _uses_default_signature(obj, hub_v1):
            # TF Hub's convention for TF1 Hub modules, and for TF1 SavedModels that
            # follow it: signature "default", output "default".
            signature = "default"
            if not options.as_dict and output_key is None:
                output_key = "default"
        target = _signatures.choose_target(
            obj,
            signature,
            handle,
            arguments=options.arguments,
            training_signature=options.training_signature,
        )
        output_key = _signatures.check_output_arguments(target, output_key, options.as_dict, handle)
        if isinstance(obj, keras.Layer):
            variables: tuple[keras.Variable, ...] = tuple(obj.weights)
            slots: tuple[_variables.VariableSlot, ...] = tuple(
                _variables.describe(w.path, w.value, -1, trainable=w.trainable) for w in variables
            )
        elif pending is None or not pending.variables:
            new_variables, new_slots = _variables.wrap_variables(obj, created, target.captured)
            variables, slots = tuple(new_variables), tuple(new_slots)
        else:
            _check_loaded_into(obj, target, pending, handle)
            variables, slots = pending.variables, pending.slots
        spec = target.output_spec
        if spec is not None:
            spec = _signatures.select_output(spec, output_key, signature, handle)
        if options.output_shape is not None:
            spec = _shapes.with_output_shape(spec, options.output_shape)
        return LoadedModel(
            obj=obj,
            target=target,
            output_key=output_key,
            variables=variables,
            slots=slots,
            regularizers=_regularizers(obj, handle),
            output_spec=spec,
            source=path if path is not None and path.is_dir() else None,
            hub_v1=_signatures.is_tf1_graph(obj, hub_v1),
        )


def layer_safe_mode(explicit: bool | None) -> bool | None:
    """A new layer's ``safe_mode``: ``explicit``, else ``False`` while
    ``keras.saving.load_model(..., safe_mode=False)`` rebuilds it, else ``None``."""
    if explicit is not None:
        return explicit
    # Keras's SafeModeScope of keras.saving.load_model(..., safe_mode=False)
    return False if _foreign_keras.in_load_scope_safe_mode() is False else None


def _uses_default_signature(obj: Any, hub_v1: bool) -> bool:
    if hub_v1:
        return True
    signatures = getattr(obj, "signatures", None) or {}
    return not callable(obj) and "default" in signatures


def _regularizers(obj: Any, handle: str | None) -> tuple[Callable[[], Any], ...]:
    if isinstance(obj, keras.Layer):
        return ()  # a Keras model's own losses reach the outer model through Keras
    losses = tuple(getattr(obj, "regularization_losses", ()) or ())
    for loss in losses:
        if not callable(loss):
            raise TypeError(
                "Expected regularization_losses to hold zero-argument callables returning "
                f"scalar losses. Received: {loss!r} in the model of handle={handle!r}."
            )
    return losses


def _check_loaded_into(
    obj: Any, target: _signatures.Target, pending: PendingModel, handle: str | None
) -> None:
    loaded = {id(v) for v in [*getattr(obj, "variables", ()), *target.captured]}
    missing = [
        slot.name
        for slot, variable in zip(pending.slots, pending.variables, strict=True)
        if id(variable.value) not in loaded
    ]
    if missing:
        raise SignatureError(
            "Expected the model to be the one this layer was saved with. Received: "
            f"handle={handle!r}, which lacks the variables {missing[:5]}. Point the handle "
            "back at the original model, or save with embed_saved_model=True.",
            handle=handle,
            expected=missing[:5],
        )
