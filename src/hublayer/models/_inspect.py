"""Describe a model without writing code against it: ``hublayer.inspect(handle) -> ModelInfo``.

What it reads, by format::

    TF2 SavedModel   __call__ (its traced input/output specs, whether it takes `training`),
                     signatures, variables, regularization_losses
    TF1 SavedModel   signatures and variables only (no __call__)
    .keras file      the model's inputs and outputs; Keras models always take `training`

The description is plain data (:class:`ModelInfo`, :class:`SignatureInfo` and the shared
:class:`~hublayer._specs.TensorInfo`), so ``records`` can build a pipeline from
``ModelInfo.input_specs`` and the CLI can print it, without touching TensorFlow objects.

Example:
    >>> import hublayer
    >>> from hublayer import testing
    >>> info = hublayer.inspect(testing.tf1_saved_model("/tmp/tf1"))
    >>> info.format, info.has_call, [s.name for s in info.signatures]
    ('tf1_saved_model', False, ['default', 'tokens'])
    >>> info.keras_layer_kwargs
    {'signature': 'default', 'output_key': 'default'}
"""

from __future__ import annotations

import inspect as pyinspect
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from hublayer._specs import RANGE_ASSUMED, TensorInfo
from hublayer.models._declared_range import declare_ranges
from hublayer.models._load import load_path
from hublayer.models._locate import resolve_handle
from hublayer.models._model_info import ModelInfo, SignatureInfo

__all__ = ["inspect"]

#: The signature a SavedModel is served from when no other is named (TF2, then TF1 Hub).
_DEFAULT_SIGNATURES = ("serving_default", "default")


def inspect(handle: str | os.PathLike[str], *, tags: Iterable[str] | None = None) -> ModelInfo:
    """Describe the model behind ``handle``: signatures, specs, variables, sizes.

    The model is loaded (from the cache, for a remote handle) but not run.

    Args:
        handle: any handle ``hublayer.resolve`` accepts, or a local SavedModel folder or
            ``.keras`` file.
        tags: the meta graph of a TF1 SavedModel, as for :func:`hublayer.load`.

    Returns:
        A frozen :class:`ModelInfo`.

    Raises:
        HandleError: the handle fits no accepted form.
        ModelNotFoundError: the handle resolves to something that holds no model.

    Example:
        >>> import hublayer
        >>> from hublayer import testing
        >>> info = hublayer.inspect(testing.image_feature_vector("/tmp/ifv", dim=8))
        >>> info.call_takes_training, [str(s) for s in info.input_specs]
        (True, ['inputs: float32[None, 32, 32, 3]'])
    """
    path = resolve_handle(handle)
    loaded = load_path(path, tags, handle=handle)
    shown = os.fspath(handle)
    if _is_keras_model(loaded):
        info = _describe_keras(shown, path, loaded)
    else:
        info = _describe_saved_model(shown, path, loaded)
    return replace(info, input_specs=declare_ranges(info.input_specs, path))


def _is_keras_model(obj: Any) -> bool:
    import keras

    return isinstance(obj, keras.Model)


def _tensor_info(name: str, spec: Any) -> TensorInfo:
    dtype = spec.dtype if isinstance(spec.dtype, str) else spec.dtype.name
    shape = tuple(None if d is None else int(d) for d in spec.shape)
    info = TensorInfo(name, dtype, shape)
    if info.is_image:  # TF Hub's convention, reported as assumed (inspect may know better)
        value_range = (0.0, 255.0) if dtype == "uint8" else (0.0, 1.0)
        return replace(info, value_range=value_range, range_source=RANGE_ASSUMED)
    return info


def _named(structure: Any, default_name: str) -> tuple[TensorInfo, ...]:
    """TensorInfos of a spec, a dict of specs, or a list of specs."""
    if isinstance(structure, Mapping):
        return tuple(_tensor_info(str(k), structure[k]) for k in sorted(structure))
    if isinstance(structure, list | tuple):
        return tuple(
            _tensor_info(getattr(s, "name", None) or f"{default_name}_{i}", s)
            for i, s in enumerate(structure)
        )
    if structure is None:
        return ()
    return (_tensor_info(default_name, structure),)


def _call_specs(fn: Any) -> tuple[tuple[TensorInfo, ...], tuple[TensorInfo, ...]]:
    """Inputs and outputs of a restored ``__call__``, from its ``training=False`` trace."""
    concrete = list(getattr(fn, "concrete_functions", ()))
    if not concrete:
        return (), ()

    def is_inference(c: Any) -> bool:
        args, kwargs = c.structured_input_signature
        training = kwargs.get("training", args[1] if len(args) > 1 else False)
        return training is False

    chosen = next((c for c in concrete if is_inference(c)), concrete[0])
    args, _ = chosen.structured_input_signature
    first = args[0] if args else None
    name = getattr(first, "name", None) or "inputs"
    return _named(first, name), _named(chosen.structured_outputs, "output")


def _takes_training(fn: Any) -> bool:
    try:
        parameters = pyinspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "training" in parameters


def _signature_info(name: str, fn: Any) -> SignatureInfo:
    _, kwargs = fn.structured_input_signature
    return SignatureInfo(name, _named(dict(kwargs), name), _named(fn.structured_outputs, name))


def _distinct(variables: Iterable[Any]) -> list[Any]:
    seen: dict[int, Any] = {}
    for variable in variables:
        seen.setdefault(id(variable), variable)
    return list(seen.values())


def _parameters(variables: Iterable[Any]) -> int:
    total = 0
    for variable in variables:
        size = 1
        for dim in variable.shape:
            size *= int(dim)
        total += size
    return total


def _size_on_disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _read_saved_model_pb(path: Path) -> tuple[tuple[tuple[str, ...], ...], bool]:
    """The meta graphs' tag sets, and whether the SavedModel is TF2 (has an object graph)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString((path / "saved_model.pb").read_bytes())
    except (OSError, ValueError):
        return (), False
    tags = tuple(tuple(sorted(meta.meta_info_def.tags)) for meta in proto.meta_graphs)
    is_tf2 = any(len(meta.object_graph_def.nodes) > 0 for meta in proto.meta_graphs)
    return tags, is_tf2


def _describe_saved_model(handle: str, path: Path, loaded: Any) -> ModelInfo:
    tags, is_tf2 = _read_saved_model_pb(path)
    signatures = tuple(
        _signature_info(name, loaded.signatures[name]) for name in sorted(loaded.signatures)
    )
    call = loaded.__call__ if callable(loaded) else None
    variables = _distinct(getattr(loaded, "variables", ()))
    trainable = _distinct(getattr(loaded, "trainable_variables", ()))
    kwargs: dict[str, Any] = {}
    if call is not None:
        entry, (inputs, outputs) = "__call__", _call_specs(call)
    else:
        default = _default_signature(signatures)
        entry = default.name if default else ""
        inputs, outputs = (default.inputs, default.outputs) if default else ((), ())
        if default is not None:
            kwargs["signature"] = default.name
            if len(outputs) == 1:
                kwargs["output_key"] = outputs[0].name
            else:
                kwargs["signature_outputs_as_dict"] = True
    return ModelInfo(
        handle=handle,
        path=str(path),
        format="tf2_saved_model" if is_tf2 else "tf1_saved_model",
        signatures=signatures,
        has_call=call is not None,
        call_takes_training=call is not None and _takes_training(call),
        entry_point=entry,
        input_specs=inputs,
        output_specs=outputs,
        num_variables=len(variables),
        num_trainable_variables=len(trainable),
        num_parameters=_parameters(variables),
        num_trainable_parameters=_parameters(trainable),
        num_regularization_losses=len(getattr(loaded, "regularization_losses", ())),
        size_bytes=_size_on_disk(path),
        tags=tags,
        keras_layer_kwargs=kwargs,
    )


def _default_signature(signatures: tuple[SignatureInfo, ...]) -> SignatureInfo | None:
    by_name = {s.name: s for s in signatures}
    for name in _DEFAULT_SIGNATURES:
        if name in by_name:
            return by_name[name]
    return signatures[0] if signatures else None


def _describe_keras(handle: str, path: Path, model: Any) -> ModelInfo:
    def specs(structure: Any, default_name: str) -> tuple[TensorInfo, ...]:
        if isinstance(structure, Mapping):
            return tuple(_tensor_info(str(k), structure[k]) for k in sorted(structure))
        items = structure if isinstance(structure, list | tuple) else [structure]
        names = [default_name] if len(items) == 1 else [t.name for t in items]
        return tuple(_tensor_info(n, t) for n, t in zip(names, items, strict=True))

    variables = _distinct(model.weights)
    trainable = _distinct(model.trainable_weights)
    keras_file = path if path.is_file() else next(path.glob("*.keras"))
    return ModelInfo(
        handle=handle,
        path=str(path),
        format="keras",
        signatures=(),
        has_call=True,
        call_takes_training=True,
        entry_point="__call__",
        input_specs=specs(model.input, "inputs"),
        output_specs=specs(model.output, "output"),
        num_variables=len(variables),
        num_trainable_variables=len(trainable),
        num_parameters=_parameters(variables),
        num_trainable_parameters=_parameters(trainable),
        num_regularization_losses=len(model.losses),
        size_bytes=_size_on_disk(keras_file),
        tags=(),
        keras_layer_kwargs={},
    )
