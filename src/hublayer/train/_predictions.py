"""What ``predict`` returns: class probabilities per record, with the true labels when
the records have them, the accuracy on the labelled ones, and a CSV writer.

Example:
    >>> import numpy as np
    >>> p = Predictions(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), ("cat", "dog"),
    ...                 labels=np.array([0, 0, -1]))
    >>> p.predicted, p.labelled, p.accuracy
    (['cat', 'dog', 'cat'], 2, 0.5)
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

__all__ = ["Predictions"]


@dataclass(frozen=True)
class Predictions:
    """Class probabilities for every record, in file order.

    Attributes:
        probabilities: float ``[examples, classes]``.
        class_names: class index to name.
        labels: the true class index of every record when the records have the label
            feature (-1 for a record without it), else None.
    """

    probabilities: np.ndarray
    class_names: tuple[str, ...]
    labels: np.ndarray | None = None

    @property
    def labelled(self) -> int:
        """How many records have a label (the ones :attr:`accuracy` is scored on)."""
        return 0 if self.labels is None else int((self.labels >= 0).sum())

    @property
    def indices(self) -> np.ndarray:
        """The predicted class index of every record."""
        indices: np.ndarray = self.probabilities.argmax(axis=1)
        return indices

    @property
    def predicted(self) -> list[str]:
        """The predicted class name of every record."""
        return [self.class_names[i] for i in self.indices.tolist()]

    @property
    def accuracy(self) -> float | None:
        """Accuracy on the records that have a label (:attr:`labelled` of them); None
        when none has."""
        if self.labels is None or not self.labelled:
            return None
        has = self.labels >= 0
        return float((self.indices[has] == self.labels[has]).mean())

    def to_csv(self, stream: TextIO) -> None:
        """Write one row per record: ``index, prediction, confidence[, label],
        p_<class>...``, after a header row (an empty label for a record without one)."""
        header = ["index", "prediction", "confidence"]
        header += ["label"] if self.labels is not None else []
        header += [f"p_{name}" for name in self.class_names]
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(header)
        for row, probs in enumerate(self.probabilities):
            best = int(probs.argmax())
            cells: list[Any] = [row, self.class_names[best], f"{probs[best]:.6f}"]
            if self.labels is not None:
                known = int(self.labels[row])
                cells.append(self.class_names[known] if known >= 0 else "")
            cells += [f"{p:.6f}" for p in probs]
            writer.writerow(cells)

    def write_csv(self, path: str | os.PathLike[str]) -> Path:
        """:meth:`to_csv` into a file (written whole, then renamed); returns the path."""
        target = Path(path)
        temp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
        with temp.open("w", newline="", encoding="utf-8") as handle:
            self.to_csv(handle)
        os.replace(temp, target)
        return target
