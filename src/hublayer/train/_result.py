"""What a training run returns, and the recipes it can follow.

Its own module so that the local recipe (``_fit_local``), the Ray engine (``_ray``) and
the public entry point (``_fit``) share it without importing one another back.

Example:
    >>> result.paths["report"]  # doctest: +SKIP
    PosixPath('runs/digits/report.md')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import keras

__all__ = ["MODES", "Mode", "TrainResult"]

#: The two recipes.
Mode = Literal["feature_extraction", "fine_tune"]
MODES = ("feature_extraction", "fine_tune")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`~hublayer.train.fit_classifier` produced.

    Attributes:
        model: the trained Keras model, input to class probabilities (raw strings in,
            with ``preprocess=``).
        history: one list per column of ``history.csv`` (``epoch``, ``phase``, ``loss``,
            ``accuracy``, ``val_loss``, ``val_accuracy``, ``learning_rate``).
        metrics: the content of ``metrics.json``: per-split scores, the confusion
            matrix, timings and how the run went.
        paths: what was written, by name (``"model"``, ``"saved_model"``, ``"metrics"``,
            ``"history"``, ``"curves"``, ``"confusion"``, ``"report"``, ``"config"``).
        class_names: class index to name.
    """

    model: keras.Model
    history: dict[str, list[Any]]
    metrics: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()
