"""Transfer learning: a pretrained model and TFRecord files in, a trained classifier out.

- :func:`fit_classifier`: feature extraction (frozen backbone, embeddings computed once
  and cached) or fine-tuning (head first, then the backbone at a lower learning rate),
  with early stopping, checkpoints and resume, and a report in ``out_dir``.
- :func:`predict`, :func:`evaluate`, :func:`load_classifier`: use a trained ``out_dir``
  on new TFRecord files.

Example:
    >>> from hublayer import train
    >>> result = train.fit_classifier(  # doctest: +SKIP
    ...     "/models/efficientnet_lite0", "data/train-*.tfrecord",
    ...     validation="data/val-*.tfrecord", epochs=10, out_dir="runs/digits")
    >>> train.evaluate("runs/digits", "data/test-*.tfrecord")["accuracy"]  # doctest: +SKIP
    0.968
"""

from __future__ import annotations

from hublayer.train._fit import TrainResult, fit_classifier
from hublayer.train._predict import (
    Classifier,
    Predictions,
    evaluate,
    load_classifier,
    predict,
)

__all__ = [
    "Classifier",
    "Predictions",
    "TrainResult",
    "evaluate",
    "fit_classifier",
    "load_classifier",
    "predict",
]
