"""hublayer: pretrained models as Keras 3 layers, fed from TFRecord files.

A drop-in for the parts of ``tensorflow_hub`` that broke on Keras 3::

    import hublayer as hub

    layer = hub.KerasLayer("https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5")
    path = hub.resolve("kaggle://google/mobilenet-v2/tensorFlow2/100-224-feature-vector/1")

Names are imported lazily, so ``import hublayer`` is fast and does not import
TensorFlow until a name that needs it is used.

Example:
    >>> import hublayer
    >>> hublayer.__version__
    '0.1.0'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hublayer._keras_registration import install as _install_keras_registration
from hublayer._version import __version__

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from hublayer import cache, config, embed, errors, records, testing, train, zoo
    from hublayer.errors import HublayerError
    from hublayer.handles import pin, resolve
    from hublayer.layers import KerasLayer
    from hublayer.models import export_saved_model, inspect, load, scan

__all__ = [
    "HublayerError",
    "KerasLayer",
    "__version__",
    "cache",
    "config",
    "embed",
    "errors",
    "export_saved_model",
    "inspect",
    "load",
    "pin",
    "records",
    "resolve",
    "scan",
    "testing",
    "train",
    "zoo",
]

# name -> (module, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "HublayerError": ("hublayer.errors", "HublayerError"),
    "KerasLayer": ("hublayer.layers", "KerasLayer"),
    "cache": ("hublayer.cache", None),
    "config": ("hublayer.config", None),
    "embed": ("hublayer.embed", None),
    "errors": ("hublayer.errors", None),
    "export_saved_model": ("hublayer.models", "export_saved_model"),
    "inspect": ("hublayer.models", "inspect"),
    "load": ("hublayer.models", "load"),
    "pin": ("hublayer.handles", "pin"),
    "records": ("hublayer.records", None),
    "resolve": ("hublayer.handles", "resolve"),
    "scan": ("hublayer.models", "scan"),
    "testing": ("hublayer.testing", None),
    "train": ("hublayer.train", None),
    "zoo": ("hublayer.zoo", None),
}


# `keras.models.load_model` finds hublayer's layers without custom_objects, and
# `import hublayer` still does not import TensorFlow.
_install_keras_registration()


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'hublayer' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
