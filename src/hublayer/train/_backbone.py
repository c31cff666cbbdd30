"""The backbone: which model extracts the features, how it is called, and its fingerprint.

A backbone is a ``hublayer.KerasLayer`` (built from a handle) or any built Keras layer or
model with one input. This module is the only place in ``train`` that turns the user's
``model`` argument into a layer, reads its input spec, and decides how it is called.

The classifier calls the backbone through ``hublayer.layers.BackboneCall``, which fixes
its mode (BatchNorm stays in inference while the outer model trains). That class lives in
``layers`` so that ``import hublayer`` registers it for ``keras.models.load_model``.

Example:
    >>> backbone = load_backbone("/models/mobilenet_v2", trainable=False)  # doctest: +SKIP
    >>> input_spec(backbone)  # doctest: +SKIP
    TensorInfo(name='inputs', dtype='float32', shape=(None, 224, 224, 3), ...)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from typing import Any, TypeAlias

import keras
import numpy as np

from hublayer._specs import TensorInfo, input_specs_of
from hublayer.errors import SignatureError, TrainingError

__all__ = [
    "ModelLike",
    "block_groups",
    "feature_dim",
    "fingerprint_model",
    "input_spec",
    "load_backbone",
    "load_cloned_models",
    "unfreeze",
]

#: What ``fit_classifier(model=...)`` accepts.
ModelLike: TypeAlias = "str | os.PathLike[str] | keras.Layer"


def load_backbone(
    model: ModelLike,
    *,
    trainable: bool,
    preprocess: ModelLike | None = None,
    output_key: str | None = None,
) -> keras.Layer:
    """Turn a handle, a path or a layer into the backbone layer.

    Args:
        model: a model handle or local path (loaded with ``hublayer.KerasLayer``), or a
            built Keras layer or model, used as is.
        trainable: for a handle, whether the layer's variables may be trained later.
        preprocess: a text preprocessor (handle, path or ``KerasLayer``): the backbone
            is then ``hublayer.layers.TextChain`` (strings -> preprocessor -> model).
        output_key: the output to use of a model that returns a dict.

    Returns:
        The backbone layer.

    Raises:
        TypeError: ``model`` is none of the accepted kinds.
        SpecMismatchError: the preprocessor's outputs do not fit the model's inputs.
        SignatureError: ``output_key`` is not one of the model's outputs.
    """
    if preprocess is not None:
        from hublayer.layers import TextChain

        return TextChain(preprocess, model, output_key=output_key, trainable=trainable)
    if isinstance(model, keras.Layer):
        return model
    if isinstance(model, str | os.PathLike):
        from hublayer.layers import KerasLayer

        layer: keras.Layer = KerasLayer(
            os.fspath(model), trainable=trainable, output_key=output_key
        )
        return layer
    raise TypeError(
        "Expected `model` to be a model handle, a local path, a hublayer.KerasLayer or a "
        f"built keras.Layer. Received: model={model!r} of type {type(model).__name__}."
    )


def input_spec(backbone: keras.Layer) -> TensorInfo:
    """The one input the backbone takes.

    Args:
        backbone: a ``hublayer.KerasLayer`` (anything with ``input_specs``) or a
            functional ``keras.Model``.

    Returns:
        Its input's :class:`~hublayer._specs.TensorInfo`.

    Raises:
        TrainingError: the input cannot be told, or the model takes several inputs.
    """
    specs: tuple[TensorInfo, ...]
    if getattr(backbone, "input_specs", None) is not None:
        specs = input_specs_of(backbone)
    else:
        inputs = getattr(backbone, "inputs", None) if isinstance(backbone, keras.Model) else None
        if not inputs:
            raise TrainingError(
                "Expected a backbone whose input is known: a hublayer.KerasLayer or a "
                f"functional keras.Model. Received: model={backbone!r}, which declares no "
                "input. Build it with keras.Input(...) or load it with hublayer.KerasLayer.",
                stage="model",
            )
        specs = tuple(
            TensorInfo(
                name=str(getattr(t, "name", f"input_{i}")),
                dtype=str(t.dtype),
                shape=tuple(t.shape),
            )
            for i, t in enumerate(inputs)
        )
    if len(specs) != 1:
        raise TrainingError(
            "Expected a backbone with exactly one input (an image or a text tensor). "
            f"Received: inputs={[str(s) for s in specs]}. Wrap the model so it takes one "
            "tensor, or pick a signature with one input.",
            stage="model",
        )
    return specs[0]


def feature_dim(backbone: keras.Layer, spec: TensorInfo) -> int:
    """Size of the feature vector the backbone outputs for one example.

    Raises:
        SignatureError: the output is not one ``[batch, features]`` tensor.
    """
    symbolic = keras.Input(shape=spec.shape[1:], dtype=spec.dtype)
    output = backbone(symbolic, training=False)
    shape = tuple(getattr(output, "shape", ()))
    if len(shape) != 2 or shape[-1] is None:
        received = (
            {k: tuple(v.shape) for k, v in output.items()} if isinstance(output, dict) else shape
        )
        raise SignatureError(
            "Expected the backbone to output one feature vector of shape [batch, features]. "
            f"Received: output shape={received}. Use a feature-vector model, or pick its "
            "pooled output with hublayer.KerasLayer(handle, output_key=...).",
            name="output",
            expected="[batch, features]",
            received=str(received),
        )
    return int(shape[-1])


def fingerprint_model(backbone: keras.Layer) -> str:
    """A sha256 of what decides the backbone's outputs: its class, config and weights,
    and a text chain's preprocessor content (see :func:`_preprocess_digest`).

    Layer names and trainability are left out (Keras numbers layers per process), so the
    same model built twice has the same fingerprint; any change to a weight changes it.
    """
    digest = hashlib.sha256()
    digest.update(f"{type(backbone).__module__}.{type(backbone).__qualname__}\n".encode())
    try:
        config: Any = dict(backbone.get_config())
    except NotImplementedError:
        config = {}
    config.pop("name", None)
    digest.update(json.dumps(_without_trainable(config), sort_keys=True, default=repr).encode())
    for variable in backbone.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(variable))
        digest.update(f"\n{value.dtype.str}{value.shape}".encode())
        digest.update(value.tobytes())
    digest.update(f"\npreprocess:{_preprocess_digest(backbone)}".encode())
    return digest.hexdigest()


def _preprocess_digest(backbone: keras.Layer) -> str | None:
    """The content digest of a text chain's preprocessor: its vocabulary and graph live
    in files, not weights, so its handle alone would miss a changed vocabulary."""
    preprocessor = getattr(backbone, "preprocessor", None)
    handle = getattr(preprocessor, "handle", None)
    if not isinstance(handle, str | os.PathLike):
        return None
    from hublayer.handles import content_digest, resolve

    return content_digest(resolve(os.fspath(handle)))


def _without_trainable(config: Any) -> Any:
    """The config without what only decides which variables train (``trainable``,
    ``trainable_patterns``...) and the names of nested layers (numbered per process):
    neither changes the outputs."""
    if isinstance(config, dict):
        return {
            k: _without_trainable(v)
            for k, v in config.items()
            if not k.startswith("trainable") and k != "name"
        }
    if isinstance(config, list | tuple):
        return [_without_trainable(v) for v in config]
    return config


_BLOCK = re.compile(r"^([A-Za-z]+[_-]?\d+[a-z]?)(?=$|[_/.:-])")


def _block_key(path: str, prefix_parts: int) -> str:
    parts = path.split("/")
    head = parts[prefix_parts] if len(parts) > prefix_parts else parts[-1]
    match = _BLOCK.match(head)
    return match.group(1) if match else head


def block_groups(paths: Sequence[str]) -> list[list[int]]:
    """Group variable paths into blocks, in model order; returns indices into ``paths``.

    A block is the first component of the path after the prefix every path shares, cut
    at its number: ``block6a_expand_conv/kernel`` and ``block6a_se/bias`` belong to
    ``block6a``; ``conv_1/kernel`` to ``conv_1``; ``dense/kernel`` to ``dense``.

    Example:
        >>> block_groups(["m/block1a_conv/kernel", "m/block1a_bn/gamma", "m/head/kernel"])
        [[0, 1], [2]]
    """
    split = [p.removesuffix(":0").split("/") for p in paths]
    common = 0
    if len(split) > 1:
        while all(len(s) > common + 1 and s[common] == split[0][common] for s in split):
            common += 1
    order: dict[str, list[int]] = {}
    for index, path in enumerate(paths):
        order.setdefault(_block_key(path.removesuffix(":0"), common), []).append(index)
    return list(order.values())


def _check_blocks(blocks: int | None, available: int) -> None:
    if blocks is not None and not 1 <= blocks <= available:
        raise TrainingError(
            f"Expected unfreeze to be 'all' or a number of blocks between 1 and "
            f"{available}. Received: unfreeze={blocks}. Pass a smaller number or 'all'.",
            stage="fine_tune",
        )


def unfreeze(backbone: keras.Layer, blocks: int | None) -> int:
    """Make the backbone trainable: all of it, or only its last ``blocks`` blocks.

    A ``hublayer.KerasLayer`` decides trainability itself (``KerasLayer.unfreeze``), so
    the chosen blocks are passed to it as exact variable paths. For other Keras layers,
    the ``trainable`` setter marks every variable trainable, then the variables of the
    blocks left frozen have their flags cleared. BatchNorm statistics never train.

    Args:
        backbone: the backbone layer.
        blocks: how many blocks, counted from the output, to train; None for all.

    Returns:
        How many variables will train.

    Raises:
        NotTrainableError, TrainingError: the backbone has no trainable variables, or
            ``blocks`` is not between 1 and the number of blocks.
    """
    # Keras skips `trainable = True` on a layer that is already trainable, leaving earlier
    # per-variable choices in place: freeze first, so every selection starts from scratch.
    backbone.trainable = False
    own = getattr(backbone, "unfreeze", None)
    if callable(own) and hasattr(backbone, "variable_paths"):
        own()
        trainable = {id(v) for v in backbone.trainable_weights}
        paths = [
            path
            for path, variable in zip(backbone.variable_paths, backbone.weights, strict=True)
            if id(variable) in trainable
        ]
        groups = block_groups(paths)
        _check_blocks(blocks, len(groups))
        if blocks is not None:
            chosen = [paths[i] for group in groups[-blocks:] for i in group]
            backbone.trainable = False
            own([f"^{re.escape(path)}$" for path in chosen])
        return len(backbone.trainable_weights)
    backbone.trainable = True
    candidates = list(backbone.trainable_weights)
    if not candidates:
        raise TrainingError(
            "Expected a backbone with trainable variables for fine-tuning. Received: a "
            "model that exposes none. Use mode='feature_extraction', or a model published "
            "with trainable variables.",
            stage="fine_tune",
        )
    groups = block_groups([str(getattr(v, "path", v.name)) for v in candidates])
    _check_blocks(blocks, len(groups))
    keep = {i for group in (groups if blocks is None else groups[-blocks:]) for i in group}
    for index, variable in enumerate(candidates):
        variable.trainable = index in keep
    return len(keep)


def load_cloned_models(model: keras.Model) -> None:
    """Load now the SavedModel of each ``KerasLayer`` in a ``keras.models.clone_model`` copy.

    A ``KerasLayer`` rebuilt from its config waits for a ``.keras`` archive's copy of its
    model, and ``BackboneCall`` gives its output spec without tracing ``call`` (so that a
    ``.keras`` reload loads nothing early). A clone has no archive coming: without this,
    each model would load at the first step, outside the distribution strategy's scope,
    and the clone's trainable variables (which its optimizer was built on) would not be
    the ones the step trains. ``resolved_object`` loads the handle, as a reload without
    an archive does.
    """
    from hublayer.layers import BackboneCall, KerasLayer, TextChain

    layers = [
        layer.backbone if isinstance(layer, BackboneCall) else layer for layer in model.layers
    ]
    for layer in layers:
        parts = [layer.preprocessor, layer.encoder] if isinstance(layer, TextChain) else [layer]
        for part in parts:
            if isinstance(part, KerasLayer):
                part.resolved_object  # noqa: B018 - loads the model (a property)
