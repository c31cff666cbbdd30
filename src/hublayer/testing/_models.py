"""Small models built the way TF Hub publishes them, for tests (yours and ours).

Each builder writes a model to ``path`` in about a second and returns ``path`` as a string.
The weights are drawn from ``numpy.random.default_rng(seed)``, so the same arguments give
the same model, byte for byte in its outputs, whatever the global Keras/TF seeds are.

============================  ==========================================================
builder                       what it writes
============================  ==========================================================
``image_feature_vector``      TF2 Reusable SavedModel, float32 ``[B,H,W,3]`` in [0, 1]
                              -> ``[B,D]``; Conv + BatchNorm + Dropout + L2 regularizer
``image_classifier``          the same with a Dense head: ``[B,H,W,3]`` -> logits ``[B,N]``
``text_embedding``            TF2 SavedModel, ``tf.string [B]`` -> ``[B,D]`` (nnlm-style)
``bert_encoder``              TF2 SavedModel, dict of int32 ``[B,S]`` -> dict outputs
``tf1_saved_model``           TF1 SavedModel: signatures ``default`` and ``tokens`` only
``keras_file``                a Keras 3 ``.keras`` file
``archive``                   a ``.tar.gz`` laid out like tfhub.dev / Kaggle downloads
============================  ==========================================================

Example:
    >>> import tensorflow as tf
    >>> from hublayer import testing
    >>> path = testing.image_feature_vector("/tmp/ifv", image_size=32, dim=16)
    >>> tf.saved_model.load(path)(tf.zeros([2, 32, 32, 3])).shape
    TensorShape([2, 16])
"""

from __future__ import annotations

import os
from typing import Literal

import keras
import numpy as np

from hublayer.models import export_saved_model
from hublayer.testing._archive import staged_path

__all__ = ["image_classifier", "image_feature_vector", "keras_file"]

Architecture = Literal["tiny", "mobilenet_v2"]
_ARCHITECTURES = ("tiny", "mobilenet_v2")
_MOBILENET_DIM = 1280


def image_feature_vector(
    path: str | os.PathLike[str],
    *,
    image_size: int = 32,
    dim: int | None = None,
    architecture: Architecture = "tiny",
    seed: int = 0,
    dropout: float = 0.1,
    l2: float = 1e-4,
    overwrite: bool = True,
) -> str:
    """Write an image feature vector model like tfhub.dev's ``.../feature_vector/5``.

    The SavedModel has ``__call__(inputs, training=False)`` taking float32
    ``[B, image_size, image_size, 3]`` in [0, 1] and returning float32 ``[B, dim]``, plus
    ``variables``, ``trainable_variables``, ``regularization_losses`` (one L2 term per
    regularized kernel) and a ``serving_default`` signature returning
    ``{"feature_vector": ...}``. BatchNorm moving statistics are calibrated on random
    images, so features are of order 1 in inference mode and gradients do not vanish.

    Args:
        path: the folder to write.
        image_size: height and width of the input images.
        dim: size of the feature vector; ``None`` gives 32 for ``"tiny"`` and 1280 for
            ``"mobilenet_v2"`` (the only size that architecture has).
        architecture: ``"tiny"`` (two Conv-BN-ReLU blocks, about 5k parameters) or
            ``"mobilenet_v2"`` (``keras.applications.MobileNetV2(weights=None)``, 2.3M
            parameters; slow to build, meant for benchmarks).
        seed: seeds the weights, the calibration images and Dropout.
        dropout: Dropout rate applied to the features when ``training=True``.
        l2: L2 factor on every convolution kernel of the ``"tiny"`` model, and on the stem
            kernel of ``"mobilenet_v2"``.
        overwrite: replace an existing folder at ``path``.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: an unknown ``architecture``, a ``dim`` that architecture cannot give,
            or an ``image_size`` below 8 (32 for ``"mobilenet_v2"``).

    Example:
        >>> import tensorflow as tf
        >>> from hublayer.testing import image_feature_vector
        >>> model = tf.saved_model.load(image_feature_vector("/tmp/ifv", dim=8))
        >>> model(tf.zeros([1, 32, 32, 3]), training=False).shape
        TensorShape([1, 8])
    """
    model = _image_model(image_size, dim, architecture, seed, dropout, l2, head=None)
    return export_saved_model(model, path, output_name="feature_vector", overwrite=overwrite)


def image_classifier(
    path: str | os.PathLike[str],
    *,
    image_size: int = 32,
    num_classes: int = 1001,
    architecture: Architecture = "tiny",
    seed: int = 0,
    overwrite: bool = True,
) -> str:
    """Write an image classifier like tfhub.dev's ``.../classification/5`` (1001 logits).

    Same body as :func:`image_feature_vector`, with a Dense head: ``__call__`` returns
    float32 logits ``[B, num_classes]`` and ``serving_default`` returns ``{"logits": ...}``.

    Args:
        path: the folder to write.
        image_size: height and width of the input images.
        num_classes: number of logits (TF Hub's ImageNet classifiers have 1001).
        architecture: ``"tiny"`` or ``"mobilenet_v2"``.
        seed: seeds the weights.
        overwrite: replace an existing folder at ``path``.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: an unknown ``architecture`` or a bad ``image_size`` / ``num_classes``.

    Example:
        >>> import tensorflow as tf
        >>> from hublayer.testing import image_classifier
        >>> tf.saved_model.load(image_classifier("/tmp/cls"))(tf.zeros([1, 32, 32, 3])).shape
        TensorShape([1, 1001])
    """
    check_positive("num_classes", num_classes)
    model = _image_model(image_size, None, architecture, seed, 0.1, 1e-4, head=num_classes)
    return export_saved_model(model, path, output_name="logits", overwrite=overwrite)


def keras_file(
    path: str | os.PathLike[str],
    *,
    image_size: int = 32,
    num_classes: int = 10,
    seed: int = 0,
    overwrite: bool = True,
) -> str:
    """Write a small Keras 3 image classifier as a ``.keras`` file.

    The model maps float32 ``[B, image_size, image_size, 3]`` in [0, 1] to softmax
    probabilities ``[B, num_classes]``, with the body of the ``"tiny"``
    :func:`image_feature_vector`. It uses built-in layers only, so
    ``keras.models.load_model`` needs no ``custom_objects``.

    Args:
        path: the file to write; it must end in ``.keras``.
        image_size: height and width of the input images.
        num_classes: number of classes.
        seed: seeds the weights.
        overwrite: replace an existing file at ``path``.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: ``path`` does not end in ``.keras``, or a bad size.
        FileExistsError: ``path`` exists and ``overwrite`` is False.

    Example:
        >>> import keras
        >>> from hublayer.testing import keras_file
        >>> keras.models.load_model(keras_file("/tmp/tiny.keras")).output_shape
        (None, 10)
    """
    if not str(path).endswith(".keras"):
        raise ValueError(
            f"Expected a path ending in '.keras'. Received: path={str(path)!r}. "
            "Add the '.keras' extension."
        )
    check_positive("num_classes", num_classes)
    model = _image_model(image_size, None, "tiny", seed, 0.1, 1e-4, head=num_classes)
    outputs = keras.layers.Softmax(name="probabilities")(model.output)
    model = keras.Model(model.input, outputs, name="tiny_classifier")
    with staged_path(path, overwrite) as staging:
        model.save(staging)
    return str(path)


def check_positive(name: str, value: int, minimum: int = 1) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer >= ``minimum``."""
    if not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"Expected {name} to be an integer >= {minimum}. Received: {name}={value!r}."
        )


def _image_model(
    image_size: int,
    dim: int | None,
    architecture: str,
    seed: int,
    dropout: float,
    l2: float,
    head: int | None,
) -> keras.Model:
    if architecture not in _ARCHITECTURES:
        raise ValueError(
            f"Expected architecture to be one of {list(_ARCHITECTURES)}. "
            f"Received: architecture={architecture!r}."
        )
    check_positive("image_size", image_size, 32 if architecture == "mobilenet_v2" else 8)
    inputs = keras.Input((image_size, image_size, 3), name="inputs")
    regularizer = keras.regularizers.L2(l2) if l2 else None
    if architecture == "tiny":
        dim = 32 if dim is None else dim
        check_positive("dim", dim)
        x = inputs
        for name, filters in (("stem", 16), ("block_1", dim)):
            x = keras.layers.Conv2D(
                filters, 3, strides=2, padding="same", use_bias=False,
                kernel_regularizer=regularizer, name=f"{name}_conv",
            )(x)  # fmt: skip
            x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
            x = keras.layers.ReLU(name=f"{name}_relu")(x)
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    else:
        if dim not in (None, _MOBILENET_DIM):
            raise ValueError(
                f"Expected dim=None or {_MOBILENET_DIM} for architecture='mobilenet_v2'. "
                f"Received: dim={dim!r}. Use architecture='tiny' for other sizes."
            )
        base = keras.applications.MobileNetV2(
            input_shape=(image_size, image_size, 3), weights=None, include_top=False,
            pooling="avg", name="mobilenet_v2",
        )  # fmt: skip
        if regularizer is not None:
            base.get_layer("Conv1").kernel.regularizer = regularizer
        x = base(keras.layers.Rescaling(2.0, offset=-1.0, name="to_minus1_1")(inputs))
    x = keras.layers.Dropout(dropout, seed=seed, name="dropout")(x)
    if head is not None:
        x = keras.layers.Dense(head, name="logits")(x)
    model = keras.Model(inputs, x, name=f"{architecture}_image_model")
    rng = np.random.default_rng(seed)
    draw_weights(model, rng)
    batch = min(16, max(2, 2**16 // image_size**2))  # enough pixels, without a slow pass
    _calibrate_batch_norm(model, rng.uniform(0.0, 1.0, (batch, image_size, image_size, 3)))
    return model


def draw_weights(model: keras.Model, rng: np.random.Generator) -> None:
    """Redraw every weight matrix (rank >= 2) from ``rng`` with a Glorot-uniform scale.

    Vectors (biases, BatchNorm gamma/beta) keep their constant initial values, so the
    whole model depends on ``rng`` only, not on global seeds.
    """
    for variable in model.trainable_weights:
        shape = tuple(variable.shape)
        if len(shape) < 2:
            continue
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        variable.assign(rng.uniform(-limit, limit, shape).astype(variable.dtype))


def _calibrate_batch_norm(model: keras.Model, images: np.ndarray) -> None:
    """Set BatchNorm moving statistics to the statistics of ``images``, in one pass.

    With momentum 0, one forward pass in training mode stores each layer's batch
    statistics, computed on inputs already normalized by the layers before it. Without
    this, random weights in inference mode shrink features to ~1e-11 in deep models.
    """
    layers = [
        layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)
    ]
    saved = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    try:
        model(images.astype("float32"), training=True)
    finally:
        for layer, momentum in zip(layers, saved, strict=True):
            layer.momentum = momentum


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    layers: list[keras.layers.Layer] = []
    for layer in model.layers:
        layers.append(layer)
        if isinstance(layer, keras.Model):
            layers.extend(_all_layers(layer))
    return layers
