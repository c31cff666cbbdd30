"""Pretrained models as Keras 3 layers.

- :class:`KerasLayer`: a TF Hub / Kaggle SavedModel, a TF1 Hub module or a ``.keras`` file
  as a ``keras.Layer`` that fine-tunes with any optimizer, saves to a self-contained
  ``.keras`` file and exports for TF Serving. A drop-in for ``tensorflow_hub.KerasLayer``.

Importing this package registers ``KerasLayer`` with Keras serialization, so
``keras.models.load_model`` can rebuild models holding it (``import hublayer.layers``, or
touch ``hublayer.KerasLayer``, before loading).

Example:
    >>> import hublayer as hub
    >>> hub.KerasLayer.__module__
    'hublayer.layers._keras_layer'
"""

from __future__ import annotations

from hublayer.layers._keras_layer import KerasLayer
from hublayer.layers._text_chain import TextChain, Truncation

__all__ = ["KerasLayer", "TextChain", "Truncation"]
