"""Write a Keras 3 model as a TF2 Reusable SavedModel, the format TF Hub publishes.

What the written folder holds (the `Reusable SavedModel` contract of TF Hub)::

    root (tf.train.Checkpoint)
    ├── __call__(inputs, training=False)   traced twice: training=True and training=False
    ├── variables                          every variable, each saved once
    ├── trainable_variables
    ├── regularization_losses              zero-argument tf.functions, one per regularizer
    │                                      (and those of wrapped SavedModels)
    └── signatures
        └── serving_default(**inputs) -> {output_name: tensor} (or the model's own dict)

The root is a ``tf.train.Checkpoint`` rather than a ``tf.Module`` subclass, because
``tf.Module.variables`` is a read-only property. ``training`` is traced as a Python bool
for each value: Keras 3 BatchNormalization needs a Python bool, not a symbolic one.

Variables are the model's own ``tf.Variable`` objects (on the TensorFlow backend a
``keras.Variable`` wraps one), so the SavedModel keeps their Keras paths as names
(``"block_1_conv/kernel:0"``), and plain ``tf.saved_model.save`` writes each of them once.
Dropout seed-generator states are variables of the model too, so they are tracked.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import keras
import tensorflow as tf

from hublayer._backend import require_tensorflow_backend
from hublayer.errors import SignatureError

__all__ = ["export_saved_model"]

#: The input name of a model with a single input, as TF Hub's image and text models use.
DEFAULT_INPUT_NAME = "inputs"

InputSignature: TypeAlias = "tf.TensorSpec | Mapping[str, tf.TensorSpec]"


def export_saved_model(
    keras_model: keras.Model,
    path: str | os.PathLike[str],
    *,
    input_signature: InputSignature | None = None,
    output_name: str = "feature_vector",
    signatures: Mapping[str, Sequence[str] | None] | None = None,
    overwrite: bool = False,
) -> str:
    """Write ``keras_model`` as a TF2 Reusable SavedModel that ``hublayer.KerasLayer`` loads.

    The folder is written to a temporary sibling and renamed into place, so ``path`` never
    holds a half-written model.

    Args:
        keras_model: a built Keras 3 model (or layer) on the TensorFlow backend. A functional
            or Sequential model with an ``Input`` knows its input spec; any other model needs
            ``input_signature``.
        path: the folder to create.
        input_signature: the inputs, batch dimension first: a ``tf.TensorSpec`` for one
            input, or a dict of them for named inputs. Defaults to the model's ``Input``s.
        output_name: the signature output key for a model that returns one tensor (a list
            of tensors gets ``output_name_0``, ``output_name_1``...). A model returning a
            dict keeps its keys.
        signatures: signature name -> the output keys it returns (``None`` for all of
            them). Defaults to ``{"serving_default": None}``.
        overwrite: replace an existing ``path`` instead of raising.

    Returns:
        ``path`` as a string.

    Raises:
        BackendError: the Keras backend is not TensorFlow.
        TypeError: ``keras_model`` is not a Keras layer or model.
        SignatureError: the input spec is unknown, or a signature names an output the
            model does not have.
        FileExistsError: ``path`` exists and ``overwrite`` is False.

    Example:
        >>> import keras, tensorflow as tf, hublayer
        >>> inputs = keras.Input((8, 8, 3))
        >>> model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))
        >>> path = hublayer.export_saved_model(model, "/tmp/pooled_features", overwrite=True)
        >>> tf.saved_model.load(path)(tf.ones([2, 8, 8, 3])).shape
        TensorShape([2, 3])
    """
    require_tensorflow_backend("export a SavedModel")
    if not isinstance(keras_model, keras.layers.Layer):
        raise TypeError(
            "Expected keras_model to be a Keras 3 `keras.Model` or `keras.Layer`. "
            f"Received: keras_model={type(keras_model).__name__}. "
            "For a tf_keras (Keras 2) model, save it with `tf.saved_model.save` instead."
        )
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"Expected a new folder for the SavedModel. Received: path={str(target)!r}, "
            "which exists. Pass overwrite=True to replace it, or choose another path."
        )
    specs = _input_specs(keras_model, input_signature)
    if not keras_model.built:
        keras_model(_zeros_like(specs), training=False)
    root, serving = _build_root(keras_model, specs, output_name, signatures)
    _save_atomically(root, serving, target)
    return str(target)


def _input_specs(model: keras.layers.Layer, given: InputSignature | None) -> Any:
    """The model's input structure as named ``tf.TensorSpec`` s (one spec or a dict)."""
    if given is not None:
        if isinstance(given, tf.TensorSpec):
            return tf.TensorSpec(given.shape, given.dtype, name=given.name or DEFAULT_INPUT_NAME)
        if isinstance(given, Mapping) and all(isinstance(s, tf.TensorSpec) for s in given.values()):
            return {key: tf.TensorSpec(s.shape, s.dtype, name=key) for key, s in given.items()}
        raise SignatureError(
            "Expected input_signature to be a tf.TensorSpec or a dict of them. "
            f"Received: input_signature={given!r}. Example: "
            "input_signature=tf.TensorSpec([None, 224, 224, 3], tf.float32).",
            received=given,
        )
    structure = _symbolic_inputs(model)
    if structure is None:
        raise SignatureError(
            "Expected a functional or Sequential model with a known input, or an "
            f"input_signature. Received: a {type(model).__name__} without one. Pass "
            "input_signature=tf.TensorSpec([None, ...], tf.float32) (or a dict of them).",
            name="input_signature",
        )
    if isinstance(structure, Mapping):
        return {key: _spec_of(t, key) for key, t in structure.items()}
    if isinstance(structure, Sequence):
        names = [_input_name(t, i) for i, t in enumerate(structure)]
        return {name: _spec_of(t, name) for name, t in zip(names, structure, strict=True)}
    return _spec_of(structure, DEFAULT_INPUT_NAME)


def _symbolic_inputs(model: keras.layers.Layer) -> Any:
    """The ``keras.Input`` structure of a functional or Sequential model, else None."""
    try:
        return model.input  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        pass
    # A Sequential model knows its inputs only as a list.
    inputs = getattr(model, "inputs", None)
    if isinstance(inputs, list | tuple) and len(inputs) == 1:
        return inputs[0]
    return inputs or None


def _input_name(tensor: Any, index: int) -> str:
    name = getattr(tensor, "name", None)
    return str(name) if name else f"{DEFAULT_INPUT_NAME}_{index}"


def _spec_of(tensor: Any, name: str) -> tf.TensorSpec:
    return tf.TensorSpec(tuple(tensor.shape), tf.as_dtype(tensor.dtype), name=name)


def _zeros_like(specs: Any) -> Any:
    def zeros(spec: tf.TensorSpec) -> tf.Tensor:
        shape = [1 if d is None else d for d in spec.shape.as_list()]
        return tf.zeros(shape, spec.dtype)

    return tf.nest.map_structure(zeros, specs)


def _unique(variables: Sequence[Any]) -> list[tf.Variable]:
    """The ``tf.Variable`` behind each Keras variable, each once, in model order."""
    seen: set[int] = set()
    unique: list[tf.Variable] = []
    for variable in variables:
        value = getattr(variable, "value", variable)
        if id(value) not in seen:
            seen.add(id(value))
            unique.append(value)
    return unique


def _regularization_losses(model: keras.layers.Layer) -> list[Any]:
    """Zero-argument ``tf.function`` s: one per variable with a Keras regularizer, plus the
    ``regularization_losses`` of each trainable sublayer that has them (a wrapped SavedModel,
    such as ``hublayer.KerasLayer``, carries its model's losses there).
    """

    def traced(loss: Callable[[], Any]) -> Any:
        fn = tf.function(loss, autograph=False)
        fn.get_concrete_function()
        return fn

    def weight_loss(regularizer: Callable[[Any], Any], variable: tf.Variable) -> Any:
        return traced(lambda: regularizer(variable))

    losses = [
        weight_loss(variable.regularizer, variable.value)
        for variable in model.weights
        if getattr(variable, "regularizer", None) is not None
    ]
    for layer in _sublayers(model):
        if layer.trainable:
            losses += [traced(loss) for loss in getattr(layer, "regularization_losses", ())]
    return losses


def _sublayers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    found: list[keras.layers.Layer] = []
    for layer in getattr(model, "layers", ()):
        found.append(layer)
        found.extend(_sublayers(layer))
    return found


def _restored_models(model: keras.layers.Layer) -> list[Any]:
    """The SavedModels that ``KerasLayer`` values anywhere inside ``model`` restored.

    Tracked by the root, so their resources (a text preprocessor's lookup tables and
    vocabulary file) are exported with the functions that capture them; their variables
    are the root's already. Layers held as attributes (a wrapper's backbone, a text
    chain's parts) are walked too, not only a model's ``layers``.
    """
    found: list[Any] = []
    seen: set[int] = set()
    stack: list[Any] = [model]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(getattr(type(layer), "resolved_object", None), property):
            found.append(layer.resolved_object)
        stack.extend(getattr(layer, "layers", ()))
        stack.extend(v for v in vars(layer).values() if isinstance(v, keras.layers.Layer))
    return found


def _named_outputs(outputs: Any, output_name: str) -> dict[str, Any]:
    if isinstance(outputs, Mapping):
        return dict(outputs)
    if isinstance(outputs, list | tuple):
        return {f"{output_name}_{i}": t for i, t in enumerate(outputs)}
    return {output_name: outputs}


def _build_root(
    model: keras.layers.Layer,
    specs: Any,
    output_name: str,
    signatures: Mapping[str, Sequence[str] | None] | None,
) -> tuple[tf.train.Checkpoint, dict[str, Any]]:
    def call(inputs: Any, training: bool = False) -> Any:
        return model(inputs, training=training)

    call_fn = tf.function(call, autograph=False)
    call_fn.get_concrete_function(specs, training=True)
    inference = call_fn.get_concrete_function(specs, training=False)

    root = tf.train.Checkpoint()
    root.variables = _unique(model.variables)
    root.trainable_variables = _unique(model.trainable_variables)
    root.regularization_losses = _regularization_losses(model)
    root.restored_models = _restored_models(model)
    root.__call__ = call_fn

    available = list(_named_outputs(inference.structured_outputs, output_name))
    wanted = {"serving_default": None} if signatures is None else dict(signatures)
    serving = {
        key: _signature(call_fn, specs, output_name, _check_keys(key, keys, available))
        for key, keys in wanted.items()
    }
    return root, serving


def _check_keys(signature: str, keys: Sequence[str] | None, available: list[str]) -> list[str]:
    chosen = available if keys is None else list(keys)
    unknown = [k for k in chosen if k not in available]
    if unknown or not chosen:
        raise SignatureError(
            f"Expected signature {signature!r} to return some of the model's outputs "
            f"{available}. Received: {list(chosen)}. Pass output keys from that list, "
            "or None for all of them.",
            name=signature,
            available=tuple(available),
            received=tuple(chosen),
        )
    return chosen


def _signature(call_fn: Any, specs: Any, output_name: str, keys: list[str]) -> Any:
    def serve(inputs: Any) -> dict[str, Any]:
        outputs = _named_outputs(call_fn(inputs, training=False), output_name)
        return {key: outputs[key] for key in keys}

    structure = dict(specs) if isinstance(specs, Mapping) else specs
    return tf.function(serve, input_signature=[structure], autograph=False)


def _save_atomically(root: tf.train.Checkpoint, signatures: dict[str, Any], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tf.saved_model.save(root, str(staging), signatures=signatures)
        if target.exists():
            old = staging.with_name(staging.name + ".old")
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
