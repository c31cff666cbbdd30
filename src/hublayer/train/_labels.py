"""Labels as classes: a record's label (an integer, or a class name) to a class index.

Integer labels ``0..n-1`` name classes ``"0".."n-1"``; string labels are sorted. When a
label map travels with the data, :func:`tensor_names` turns integer labels into their
class names inside ``tf.data``, so splits converted separately still agree.

Example:
    >>> import numpy as np
    >>> numpy_labels(np.array([[1], [0]]))
    array([1, 0])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from hublayer.errors import Fix, SpecMismatchError, TrainingError

__all__ = ["Classes", "numpy_labels", "tensor_names"]


def tensor_names(names: Sequence[str]) -> Any:
    """A function from a batch of integer labels to their class names, inside tf.data.
    An index outside the map becomes ``"<label N outside the label map>"``, which no
    class has, so :meth:`Classes.encode` reports it."""
    table = tf.constant(list(names))
    count = len(names)

    def to_names(labels: Any) -> Any:
        flat = tf.reshape(tf.cast(labels, tf.int64), [-1])
        inside = tf.logical_and(flat >= 0, flat < count)
        picked = tf.gather(table, tf.clip_by_value(flat, 0, count - 1))
        outside = tf.strings.join(
            ["<label ", tf.strings.as_string(flat), " outside the label map>"]
        )
        return tf.where(inside, picked, outside)

    return to_names


def numpy_labels(labels: Any) -> np.ndarray:
    """A batch of record labels as a 1-D int64 or str array."""
    array = np.asarray(labels.numpy() if hasattr(labels, "numpy") else labels)
    if array.ndim > 1 and array.shape[1:] == (1,) * (array.ndim - 1):
        array = array.reshape(-1)
    if array.dtype.kind in "OSU":
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in array])
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise SpecMismatchError(
            "Expected one integer or string class label per example. "
            f"Received: labels of dtype {array.dtype} and shape {array.shape[1:]} per "
            "example.",
            fix=Fix(
                "Pass label= the feature that holds the class.",
                "Pass --label the feature that holds the class.",
            ),
            feature="label",
            expected="int or string scalar",
            received=f"{array.dtype}{list(array.shape[1:])}",
        )
    return array.astype(np.int64)


@dataclass(frozen=True)
class Classes:
    """The class names, and the mapping from a record's label to a class index.

    Integer labels ``0..n-1`` name classes ``"0".."n-1"``; string labels are sorted.
    """

    names: tuple[str, ...]
    strings: bool

    @classmethod
    def from_labels(
        cls,
        train: np.ndarray,
        others: Sequence[np.ndarray] = (),
        num_classes: int | None = None,
        *,
        names: Sequence[str] | None = None,
    ) -> Classes:
        """Derive the classes from the training labels (and check the other splits).

        Args:
            train: the training labels as read.
            others: the other splits' labels.
            num_classes: the number of classes, when integer labels do not show them all.
            names: the class names in label order (the training data's label map); the
                labels are then those names.

        Raises:
            TrainingError: fewer than two classes, or a negative or too large label.
        """
        if train.size == 0:
            raise TrainingError(
                "Expected training data with at least one example. Received: no records "
                "in the training files. Check the glob.",
                stage="data",
            )
        strings = train.dtype.kind == "U"
        if names is not None:
            if num_classes is not None and num_classes != len(names):
                raise TrainingError(
                    f"Expected num_classes to match the label map's {len(names)} classes "
                    f"{list(names)}. Received: num_classes={num_classes}. Leave it out.",
                    stage="data",
                )
            names = tuple(names)
        elif strings:
            names = tuple(sorted(set(train.tolist())))
        else:
            everything = np.concatenate([train, *[o for o in others if o.size]])
            low, high = int(everything.min()), int(everything.max())
            count = high + 1 if num_classes is None else num_classes
            if low < 0 or high >= count:
                raise TrainingError(
                    f"Expected integer labels between 0 and {count - 1}. Received: labels "
                    f"from {low} to {high}. Fix the labels, or pass num_classes= that covers "
                    "them.",
                    stage="data",
                )
            names = tuple(str(i) for i in range(count))
        seen = np.unique(train)
        if len(seen) < 2:
            raise TrainingError(
                "Expected at least two classes in the training labels to train a classifier. "
                f"Received: only {seen.tolist()}. Check label= and the training files.",
                stage="data",
            )
        return cls(names=names, strings=strings)

    def encode(self, labels: np.ndarray, *, split: str, feature: str = "label") -> np.ndarray:
        """Class indices (int32) for labels read from the records.

        Args:
            labels: the labels as read (class names, or integer indices).
            split: the split they come from, for messages.
            feature: the feature they were read from, for messages.

        Raises:
            SpecMismatchError: a label that is not one of the classes.
        """
        fix = Fix(
            "Use data with the same classes, or pass label= the feature that holds them.",
            "Use data with the same classes, or pass --label the feature that holds them.",
        )
        if not self.strings:
            if labels.dtype.kind in "OSU":
                shown = sorted({str(v) for v in labels.tolist()})[:5]
                raise SpecMismatchError(
                    f"Expected {split} labels to be class indices 0..{len(self.names) - 1}, "
                    f"as in training. Received: text in feature {feature!r}, e.g. {shown}.",
                    feature=feature,
                    expected=list(self.names),
                    received=shown,
                    fix=fix,
                )
            if labels.size and (labels.max() >= len(self.names) or labels.min() < 0):
                raise SpecMismatchError(
                    f"Expected {split} labels among the training classes {list(self.names)}. "
                    f"Received: labels from {labels.min()} to {labels.max()} in feature "
                    f"{feature!r}.",
                    feature=feature,
                    expected=list(self.names),
                    received=labels.max().item(),
                    fix=fix,
                )
            return labels.astype(np.int32)
        if labels.dtype.kind in "iu" and labels.size:
            raise SpecMismatchError(
                f"Expected {split} labels that name the model's classes {list(self.names)}. "
                f"Received: integer labels in feature {feature!r} and no label map beside "
                "the files to name them, so which class each number means is unknown.",
                feature=feature,
                expected=list(self.names),
                received="integers without a label map",
                fix=Fix(
                    "Convert the data with the training data's label map "
                    "(records.convert_images(..., classes='data/train.label_map.json')), or "
                    "put that label map beside the files as <prefix>.label_map.json.",
                    "Convert the data with the training data's label map (hublayer records "
                    "convert images DIR OUT --label-map data/train.label_map.json), or put "
                    "that label map beside the files as <prefix>.label_map.json.",
                ),
            )
        lookup = {name: i for i, name in enumerate(self.names)}
        unknown = sorted({str(v) for v in labels.tolist()} - lookup.keys())
        if unknown:
            raise SpecMismatchError(
                f"Expected {split} labels among the training classes {list(self.names)}. "
                f"Received: unknown labels {unknown[:10]} in feature {feature!r}.",
                feature=feature,
                expected=list(self.names),
                received=unknown[:10],
                fix=fix,
            )
        return np.array([lookup[str(v)] for v in labels.tolist()], dtype=np.int32)

    def tensor_encoder(self) -> Any:
        """A function mapping a batch of record labels to class indices inside tf.data
        (labels already checked by :meth:`encode`)."""
        if not self.strings:
            return lambda labels: tf.cast(tf.reshape(labels, [-1]), tf.int32)
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(self.names), tf.range(len(self.names), dtype=tf.int32)
            ),
            default_value=-1,
        )
        return lambda labels: table.lookup(tf.reshape(labels, [-1]))
