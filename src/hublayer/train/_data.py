"""The data side of training: which files, how they are read for the model, and labels.

Every pipeline comes from ``hublayer.records.dataset(..., for_model=spec)``, which derives
image size, value range, dtype and text handling from the data's schema and the model's
input spec, and raises :class:`~hublayer.errors.SpecMismatchError` when they cannot meet.
Every split's pipeline is built before anything runs, so a mismatch is reported before
any embedding is computed or any weight is trained.

Class names travel with the data: when integer labels have a label map beside their
shards (``data/train.label_map.json``, written by ``records.convert_images``), a
:class:`Source` reads each label as its class *name*, so splits converted separately
still agree, and the trained model's classes are the names.

Example:
    >>> files = records.expand_files("data/train-*.tfrecord", role="train")  # doctest: +SKIP
    >>> source = Source("train", tuple(files), spec, "label")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from hublayer._specs import TensorInfo
from hublayer.errors import (
    Fix,
    OutputNotWritableError,
    RecordError,
    SpecMismatchError,
    TrainingError,
)

__all__ = [
    "Classes",
    "Source",
    "check_writable",
    "naming_bad_images",
    "numpy_labels",
]


def _as_features(features: Any) -> Any:
    if isinstance(features, Mapping) and len(features) == 1:
        return next(iter(features.values()))
    return features


@dataclass(frozen=True)
class Source:
    """One split's files and how they are read for the model.

    Args:
        name: ``"train"``, ``"validation"``, ``"test"``...
        files: the TFRecord files, as ``records.expand_files`` lists them.
        spec: the model input the pipeline must produce.
        label: the label feature, or None for unlabelled data.
        options: extra keyword arguments for ``hublayer.records.dataset`` (a ``schema``
            among them is used instead of inspecting the files).
        label_map: read integer labels as class names through the label map beside
            the files, when there is one (see :attr:`label_names`).
    """

    name: str
    files: tuple[str, ...]
    spec: TensorInfo
    label: str | None
    options: Mapping[str, Any] = field(default_factory=dict)
    label_map: bool = True

    @functools.cached_property
    def label_names(self) -> tuple[str, ...] | None:
        """The class names of the label map beside the files, when the label is an
        integer feature that has one; labels are then read as these names.

        Raises:
            SchemaError: the files have different label maps, or only some have one.
        """
        if not self.label_map or self.label is None:
            return None
        from hublayer import records

        found = records.find_label_map(self.files, label=self.label)
        if found is None or self.label not in self.schema:
            return None
        if self.schema[self.label].kind != "int64":
            return None
        return found.classes

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
        if self.label_names is not None:
            to_names = _tensor_names(self.label_names)
            return dataset.map(lambda x, y: (_as_features(x), to_names(y)))
        return dataset.map(lambda x, y: (_as_features(x), y))

    def fingerprint(self) -> str:
        """Changes when a file, the label, its class names, the model input or an
        option changes."""
        from hublayer import records

        return records.fingerprint_files(
            self.files,
            label=self.label,
            label_names=self.label_names,
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
        if self.label_names is not None:
            dataset = dataset.map(lambda x, y: (x, _tensor_names(self.label_names)(y)))
        return np.concatenate([numpy_labels(y) for _, y in dataset] or [np.zeros([0], np.int64)])


def _tensor_names(names: Sequence[str]) -> Any:
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


def check_writable(path: str | os.PathLike[str], *, what: str, flag: str, argument: str) -> Path:
    """Check, before any work, that the folder ``path`` can be created and written to.

    Nothing is created: the nearest existing folder is probed with a temp file.

    Args:
        path: the output folder.
        what: what goes there, for the message (``"the training output"``).
        flag: the CLI flag that sets it (``"--out"``).
        argument: the Python argument that sets it (``"out_dir="``).

    Returns:
        ``path`` as a Path.

    Raises:
        OutputNotWritableError: a file is in the way, or the folder is not writable.

    Example:
        >>> check_writable("runs/new", what="the output", flag="--out", argument="out_dir=")
        PosixPath('runs/new')
    """
    target = Path(path)
    probe = target
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    fix = Fix(
        f"Pass {argument} a folder you can write to.", f"Pass {flag} a folder you can write to."
    )
    if not probe.is_dir():
        raise OutputNotWritableError(
            f"Expected {what} folder at {str(target)!r} to be creatable. Received: "
            f"{str(probe)!r} is a file, not a folder.",
            path=str(target),
            fix=fix,
        )
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".hublayer-write-test-"):
            pass
    except OSError as error:
        raise OutputNotWritableError(
            f"Expected {what} folder at {str(target)!r} to be writable. Received: "
            f"{str(probe)!r} cannot be written to ({error.strerror or error}).",
            path=str(target),
            fix=fix,
        ) from None
    return target


_DECODE_WORDS = ("jpeg", "png", "gif", "bmp", "decode", "image")


@contextlib.contextmanager
def naming_bad_images(files: Iterable[str]) -> Iterator[None]:
    """Turn TensorFlow's image decode failure ("jpeg::Uncompress failed"), which names
    no file, into a :class:`RecordError` naming the file, the record and the feature.

    On such a failure the files are read again and every image decoded until the bad
    one is found; when none is found, the original error goes on.

    Example:
        >>> with naming_bad_images(["data/train-00000-of-00001.tfrecord"]):  # doctest: +SKIP
        ...     model.fit(dataset)
    """
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        text = str(error).lower()
        if not any(word in text for word in _DECODE_WORDS):
            raise
        from hublayer import records

        bad = records.verify_images(list(files), limit=1)
        if not bad:
            raise
        first = bad[0]
        raise RecordError(
            f"Expected every image to decode. Received: {first}.",
            file=first.file,
            index=first.record,
            fix=Fix(
                "Convert the images again (records.convert_images skips and lists the "
                "files that do not decode); records.verify_images lists every bad record.",
                "Convert the images again (hublayer records convert images skips and lists "
                "the files that do not decode); hublayer records inspect FILES --all lists "
                "every bad record.",
            ),
        ) from None
