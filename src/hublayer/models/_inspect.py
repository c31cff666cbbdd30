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
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from hublayer._specs import RANGE_ASSUMED, RANGE_DECLARED, TensorInfo, check_range
from hublayer.models._load import load_path
from hublayer.models._locate import resolve_handle

__all__ = [
    "DECLARATION_FILES",
    "ModelInfo",
    "SignatureInfo",
    "declare_ranges",
    "declared_range",
    "inspect",
]

Format = Literal["tf2_saved_model", "tf1_saved_model", "keras"]

#: The signature a SavedModel is served from when no other is named (TF2, then TF1 Hub).
_DEFAULT_SIGNATURES = ("serving_default", "default")
#: Files beside ``saved_model.pb`` in which a model may declare its input value range, as
#: ``{"input": {"value_range": [low, high]}}`` (the zoo writes ``hublayer_zoo.json``).
DECLARATION_FILES = ("hublayer.json", "hublayer_zoo.json")
_log = logging.getLogger("hublayer.models")


@dataclass(frozen=True)
class SignatureInfo:
    """One named signature: its inputs and outputs, each a :class:`TensorInfo`."""

    name: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    def __str__(self) -> str:
        ins = ", ".join(str(t) for t in self.inputs)
        outs = ", ".join(str(t) for t in self.outputs)
        return f"{self.name}({ins}) -> {{{outs}}}"


@dataclass(frozen=True)
class ModelInfo:
    """A typed description of a model, as :func:`inspect` finds it.

    Attributes:
        handle: the handle as given.
        path: the local folder (or ``.keras`` file) it resolved to.
        format: ``"tf2_saved_model"``, ``"tf1_saved_model"`` (signatures only) or ``"keras"``.
        signatures: the SavedModel's signatures, sorted by name (none for ``.keras``).
        has_call: whether the model is callable (a TF2 ``__call__``, or a Keras model).
        call_takes_training: whether that call accepts ``training=``.
        entry_point: what ``KerasLayer`` calls by default: ``"__call__"`` or a signature.
        input_specs: the inputs of ``entry_point`` (records builds pipelines from these).
            Image inputs (rank 4, 1/3/4 channels) carry a value range and its
            ``range_source``: the range the model declares in ``hublayer.json`` (or the
            zoo's ``hublayer_zoo.json``), else TF Hub's convention, ``(0, 1)`` for floats
            and ``(0, 255)`` for uint8, marked ``"assumed: TF Hub convention"``: a
            SavedModel does not record it, so check the model's documentation.
        output_specs: its outputs; a single unnamed output is called ``"output"``.
        num_variables / num_trainable_variables: counts of distinct variables.
        num_parameters / num_trainable_parameters: scalar values in them.
        num_regularization_losses: length of ``regularization_losses``.
        size_bytes: bytes on disk of every file of the model.
        tags: the meta-graph tag sets of a SavedModel (``[()]`` for TF1 Hub's empty set).
        keras_layer_kwargs: the ``hublayer.KerasLayer`` arguments this model needs beside
            its handle, such as ``{"signature": "default", "output_key": "default"}``.
    """

    handle: str
    path: str
    format: Format
    signatures: tuple[SignatureInfo, ...]
    has_call: bool
    call_takes_training: bool
    entry_point: str
    input_specs: tuple[TensorInfo, ...]
    output_specs: tuple[TensorInfo, ...]
    num_variables: int
    num_trainable_variables: int
    num_parameters: int
    num_trainable_parameters: int
    num_regularization_losses: int
    size_bytes: int
    tags: tuple[tuple[str, ...], ...]
    keras_layer_kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def fine_tunable(self) -> bool:
        """Whether ``KerasLayer(..., trainable=True)`` can train this model."""
        return self.has_call and self.num_trainable_variables > 0

    def signature(self, name: str) -> SignatureInfo:
        """The signature called ``name``.

        Raises:
            SignatureError: there is none; the message lists those there are.
        """
        for candidate in self.signatures:
            if candidate.name == name:
                return candidate
        from hublayer.errors import SignatureError

        available = tuple(s.name for s in self.signatures)
        raise SignatureError(
            f"Expected one of the model's signatures {list(available)}. "
            f"Received: name={name!r}. Pass one of those names.",
            handle=self.handle,
            name=name,
            available=available,
        )

    def keras_layer_code(self) -> str:
        """The ``hublayer.KerasLayer(...)`` call this model needs, as Python source."""
        args = [repr(self.handle)] + [f"{k}={v!r}" for k, v in self.keras_layer_kwargs.items()]
        return f"hublayer.KerasLayer({', '.join(args)})"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: tuples become lists, shapes keep ``None``."""
        data = asdict(self)
        data["keras_layer_kwargs"] = dict(self.keras_layer_kwargs)
        data["fine_tunable"] = self.fine_tunable
        return data


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


def declare_ranges(
    specs: tuple[TensorInfo, ...], folder: str | os.PathLike[str] | None
) -> tuple[TensorInfo, ...]:
    """``specs`` with the range ``folder`` declares set on each image input, if it does.

    Example:
        >>> import tempfile
        >>> spec = TensorInfo("x", "float32", (None, 8, 8, 3), (0.0, 1.0), RANGE_ASSUMED)
        >>> declare_ranges((spec,), tempfile.mkdtemp())[0].range_source
        'assumed: TF Hub convention'
    """
    declared = declared_range(folder) if folder is not None else None
    if declared is None:
        return specs
    return tuple(
        replace(s, value_range=declared, range_source=RANGE_DECLARED) if s.is_image else s
        for s in specs
    )


def declared_range(path: str | os.PathLike[str]) -> tuple[float, float] | None:
    """The input value range a model folder declares in one of :data:`DECLARATION_FILES`.

    Returns None when no such file holds ``{"input": {"value_range": [low, high]}}``; a
    file that cannot be read is logged and ignored (the range is then assumed).
    """
    folder = Path(path)
    if not folder.is_dir():
        return None
    for name in DECLARATION_FILES:
        file = folder / name
        if not file.is_file():
            continue
        try:
            found = json.loads(file.read_text(encoding="utf-8"))["input"]["value_range"]
            return check_range(found, name=f"input.value_range in {name}")
        except (OSError, ValueError, KeyError, TypeError) as error:
            _log.warning("Ignoring the value range in %s: %s", file, error)
    return None


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
