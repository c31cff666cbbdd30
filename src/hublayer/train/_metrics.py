"""Scores from predicted probabilities: accuracy, loss, confusion matrix.

Every split is scored the same way, from one pass of predictions, whether they come from
cached features or from the records, at training time or from ``hublayer evaluate``.

Example:
    >>> import numpy as np
    >>> scores = score(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]), num_classes=2)
    >>> scores["accuracy"], scores["confusion_matrix"]
    (0.5, [[1, 1], [0, 0]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hublayer.train._data import numpy_labels

__all__ = ["predict_batches", "score"]

_EPSILON = 1e-7


def score(probabilities: np.ndarray, labels: np.ndarray, *, num_classes: int) -> dict[str, Any]:
    """Accuracy, mean cross-entropy and the confusion matrix (rows: true, columns: predicted).

    Args:
        probabilities: ``[examples, num_classes]``.
        labels: class indices ``[examples]``.
        num_classes: the number of classes.

    Returns:
        ``{"examples", "accuracy", "loss", "confusion_matrix"}`` (plain Python types).
    """
    count = int(labels.shape[0])
    if count == 0:
        empty = [[0] * num_classes for _ in range(num_classes)]
        return {"examples": 0, "accuracy": None, "loss": None, "confusion_matrix": empty}
    predicted = probabilities.argmax(axis=1)
    picked = probabilities[np.arange(count), labels]
    loss = float(-np.log(np.clip(picked, _EPSILON, 1.0)).mean())
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return {
        "examples": count,
        "accuracy": float((predicted == labels).mean()),
        "loss": loss,
        "confusion_matrix": matrix.tolist(),
    }


def predict_batches(model: Any, dataset: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Run ``model`` over a dataset, keeping each batch's labels with its predictions.

    Args:
        model: a Keras model.
        dataset: batches of ``(inputs, labels)``, or of ``inputs`` alone.

    Returns:
        ``(probabilities, labels)``: labels as read (1-D int64 or str), None for
        unlabelled data.
    """
    outputs: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for batch in dataset:
        inputs, raw = batch if isinstance(batch, tuple) and len(batch) == 2 else (batch, None)
        outputs.append(np.asarray(model.predict_on_batch(inputs)))
        if raw is not None:
            labels.append(numpy_labels(raw))
    width = int(model.output_shape[-1])
    probabilities = np.concatenate(outputs) if outputs else np.zeros((0, width), np.float32)
    return probabilities, (np.concatenate(labels) if labels else None)
