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

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hublayer._specs import TensorInfo
from hublayer.train._bad_images import naming_bad_images
from hublayer.train._labels import Classes, numpy_labels, tensor_names
from hublayer.train._output_folder import check_writable

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
            to_names = tensor_names(self.label_names)
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
            dataset = dataset.map(lambda x, y: (x, tensor_names(self.label_names)(y)))
        return np.concatenate([numpy_labels(y) for _, y in dataset] or [np.zeros([0], np.int64)])
