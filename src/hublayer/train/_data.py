"""The data side of training: which files, how they are read for the model, and labels.

Every pipeline comes from ``hublayer.records.dataset(..., for_model=spec)``, which derives
image size, value range, dtype and text handling from the data's schema and the model's
input spec, and raises :class:`~hublayer.errors.SpecMismatchError` when they cannot meet.
:func:`open_sources` builds every split's pipeline before anything runs, so a mismatch is
reported before any embedding is computed or any weight is trained.

Example:
    >>> files = expand_files("data/train-*.tfrecord", role="train")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from hublayer._specs import TensorInfo
from hublayer.errors import RecordError, SpecMismatchError, TrainingError

__all__ = [
    "Classes",
    "FilesLike",
    "Source",
    "expand_files",
    "fingerprint_files",
    "numpy_labels",
]

#: A glob, a file, or a list of them.
FilesLike = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

_GLOB_CHARS = frozenset("*?[")


def expand_files(files: FilesLike, *, role: str) -> tuple[str, ...]:
    """Expand globs into a sorted tuple of files.

    Args:
        files: a glob (``"data/train-*.tfrecord"``), a file, or a list of them.
        role: which split these are (``"train"``, ``"validation"``...), for messages.

    Returns:
        The matching files, sorted, without duplicates.

    Raises:
        RecordError: a pattern matches nothing, or a named file does not exist.
    """
    patterns = [files] if isinstance(files, str | os.PathLike) else list(files)
    found: list[str] = []
    for pattern in patterns:
        text = os.path.expanduser(os.fspath(pattern))
        if "://" in text:
            matches = sorted(tf.io.gfile.glob(text))
        elif _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(text))
        else:
            matches = [text] if os.path.isfile(text) else []
        if not matches:
            raise RecordError(
                f"Expected the {role} data to match at least one TFRecord file. "
                f"Received: {role}={text!r}, which matches none. Check the path or glob "
                "(quote it in a shell so the shell does not expand it).",
                file=text,
            )
        found.extend(matches)
    return tuple(dict.fromkeys(found))


def fingerprint_files(files: Iterable[str], **extra: Any) -> str:
    """A sha256 of the files' paths, sizes and modification times, and of ``extra``."""
    rows: list[Any] = []
    for name in files:
        if "://" in name:
            rows.append([name, tf.io.gfile.stat(name).length])
            continue
        stat = os.stat(name)
        rows.append([os.path.abspath(name), stat.st_size, stat.st_mtime_ns])
    payload = json.dumps({"files": rows, **extra}, sort_keys=True, default=repr)
    return hashlib.sha256(payload.encode()).hexdigest()


def _as_features(features: Any) -> Any:
    if isinstance(features, Mapping) and len(features) == 1:
        return next(iter(features.values()))
    return features


@dataclass(frozen=True)
class Source:
    """One split's files and how they are read for the model.

    Args:
        name: ``"train"``, ``"validation"``, ``"test"``...
        files: the TFRecord files.
        spec: the model input the pipeline must produce.
        label: the label feature, or None for unlabelled data.
        options: extra keyword arguments for ``hublayer.records.dataset`` (a ``schema``
            among them is used instead of inspecting the files).
    """

    name: str
    files: tuple[str, ...]
    spec: TensorInfo
    label: str | None
    options: Mapping[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def schema(self) -> Any:
        """The records' schema: from ``options``, else inspected once from a sample."""
        if self.options.get("schema") is not None:
            return self.options["schema"]
        from hublayer import records

        return records.inspect(list(self.files))

    @property
    def count_hint(self) -> int | None:
        """The number of records, exact or estimated, when the schema knows it."""
        schema = self.schema
        count = getattr(schema, "total_records", None) or getattr(schema, "estimated_records", None)
        return int(count) if count else None

    def dataset(self, *, batch_size: int, shuffle: bool, seed: int | None = None) -> Any:
        """A ``tf.data.Dataset`` of ``(features, label)`` batches (``features`` alone
        when there is no label), one pass over the files.

        Raises:
            SpecMismatchError: the data cannot feed the model.
            SchemaError: the label or an input feature is missing from the records.
        """
        from hublayer import records

        options = {k: v for k, v in self.options.items() if k != "schema"}
        dataset = records.dataset(
            list(self.files),
            self.schema,
            batch_size=batch_size,
            label=self.label,
            shuffle=shuffle,
            seed=seed,
            for_model=(self.spec,),
            **options,
        )
        if self.label is None:
            return dataset.map(_as_features)
        return dataset.map(lambda x, y: (_as_features(x), y))

    def fingerprint(self) -> str:
        """Changes when a file, the label, the model input or an option changes."""
        return fingerprint_files(
            self.files,
            label=self.label,
            spec=repr(self.spec),
            options={k: repr(v) for k, v in sorted(self.options.items())},
        )

    def labels(self, batch_size: int = 1024) -> np.ndarray:
        """Every label, in file order: one pass that parses the label feature alone (no
        image is decoded).

        Raises:
            SchemaError: the records have no such label feature.
        """
        from hublayer import records

        if self.label is None:
            return np.zeros([0], np.int64)
        only_label = dataclasses.replace(self.schema, features=(self.schema[self.label],))
        dataset = records.dataset(
            list(self.files), only_label, batch_size=batch_size, label=self.label, shuffle=False
        )
        return np.concatenate([numpy_labels(y) for _, y in dataset] or [np.zeros([0], np.int64)])


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
            "example. Pass label= the feature that holds the class.",
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
        cls, train: np.ndarray, others: Sequence[np.ndarray] = (), num_classes: int | None = None
    ) -> Classes:
        """Derive the classes from the training labels (and check the other splits).

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
        if strings:
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

    def encode(self, labels: np.ndarray, *, split: str) -> np.ndarray:
        """Class indices (int32) for labels read from the records.

        Raises:
            SpecMismatchError: a label that is not one of the classes.
        """
        if not self.strings:
            if labels.dtype.kind == "U" or (labels.size and labels.max() >= len(self.names)):
                raise SpecMismatchError(
                    f"Expected {split} labels among the training classes {list(self.names)}. "
                    f"Received: labels up to {labels.max()!r}. Use data with the same classes.",
                    feature="label",
                    expected=list(self.names),
                    received=labels.max().item() if labels.size else None,
                )
            return labels.astype(np.int32)
        lookup = {name: i for i, name in enumerate(self.names)}
        unknown = sorted({str(v) for v in labels.tolist()} - lookup.keys())
        if unknown:
            raise SpecMismatchError(
                f"Expected {split} labels among the training classes {list(self.names)}. "
                f"Received: unknown labels {unknown[:10]}. Use data with the same classes.",
                feature="label",
                expected=list(self.names),
                received=unknown[:10],
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
