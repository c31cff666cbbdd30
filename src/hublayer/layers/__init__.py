"""Pretrained models as Keras 3 layers.

- :class:`KerasLayer`: a TF Hub / Kaggle SavedModel, a TF1 Hub module or a ``.keras`` file
  as a ``keras.Layer`` that fine-tunes with any optimizer, saves to a self-contained
  ``.keras`` file and exports for TF Serving. A drop-in for ``tensorflow_hub.KerasLayer``.
- :class:`BackboneCall`: calls a backbone in a fixed mode (BatchNorm stays in inference
  while the outer model trains); every ``model.keras`` of ``train.fit_classifier`` holds it.

Importing this package registers these layers with Keras serialization, so
``keras.models.load_model`` can rebuild models holding them; ``import hublayer`` imports
this package as soon as Keras is imported (``hublayer._keras_registration``).

Example:
    >>> import hublayer as hub
    >>> hub.KerasLayer.__module__
    'hublayer.layers._keras_layer'
"""

from __future__ import annotations

from hublayer.layers._backbone_call import BackboneCall
from hublayer.layers._keras_layer import KerasLayer
from hublayer.layers._text_chain import TextChain, Truncation
from hublayer.layers._whole_output import whole_output_layer

__all__ = ["BackboneCall", "KerasLayer", "TextChain", "Truncation", "whole_output_layer"]
