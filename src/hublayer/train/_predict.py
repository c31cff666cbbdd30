"""Use a trained ``out_dir`` on new TFRecord files: predict and evaluate.

``out_dir/config.json`` records what the data must look like (the model input spec, the
label feature, the class names, the pipeline options), so new files are read exactly as
the training files were. Labels are matched to the model's classes by *name* (through the
label map beside the files), and files whose label map names a class the model does not
know are refused, showing both.

Example:
    >>> preds = predict("runs/digits", "data/new-*.tfrecord", output="preds.csv")  # doctest: +SKIP
    >>> preds.predicted[:3]  # doctest: +SKIP
    ['7', '2', '1']
    >>> evaluate("runs/digits", "data/test-*.tfrecord")["accuracy"]  # doctest: +SKIP
    0.968
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from hublayer import records
from hublayer._specs import TensorInfo
from hublayer.errors import Fix, ModelNotFoundError, RecordError, SchemaError, SpecMismatchError
from hublayer.train._data import (
    Classes,
    Source,
    check_writable,
    naming_bad_images,
    numpy_labels,
)
from hublayer.train._metrics import predict_batches, score
from hublayer.train._predictions import Predictions
from hublayer.train._report import FILES

__all__ = ["Classifier", "Predictions", "evaluate", "load_classifier", "predict"]

_BATCH = 64
_log = logging.getLogger("hublayer.train")


@dataclass(frozen=True)
class Classifier:
    """A trained classifier loaded from an ``out_dir``.

    Attributes:
        model: the Keras model (input to class probabilities).
        class_names: class index to name.
        label: the label feature of the training data.
        spec: the model input the data must feed.
        settings: the whole ``config.json``.
    """

    model: keras.Model
    class_names: tuple[str, ...]
    label: str
    spec: TensorInfo
    settings: dict[str, Any]

    @property
    def named(self) -> bool:
        """Whether the classes have names (from a label map, or string labels) that the
        data's labels are matched by."""
        return bool(self.settings.get("labels_are_strings"))

    def source(self, files: records.Files, *, label: str | None, name: str) -> Source:
        """Read ``files`` for this model, as the training data was read (labels as class
        names, through the files' label map, when the model's classes have names).

        Raises:
            SpecMismatchError: the files' label map names classes the model lacks.
        """
        options = self.settings.get("pipeline", {})
        paths = tuple(records.expand_files(files, role=name))
        source = Source(name, paths, self.spec, label, options, label_map=self.named)
        data_names = source.label_names
        if data_names is not None:
            unknown = [n for n in data_names if n not in self.class_names]
            if unknown:
                raise SpecMismatchError(
                    f"Expected the {name} files' label map to name classes of the model. "
                    f"Received: the files' classes {list(data_names)}; the model's classes "
                    f"{list(self.class_names)}; {unknown} are not the model's.",
                    feature=label,
                    expected=list(self.class_names),
                    received=list(data_names),
                    fix=Fix(
                        "Use data with the model's classes, or train a model on these.",
                        "Use data with the model's classes, or train a model on these.",
                    ),
                )
        return source


def load_classifier(out_dir: str | os.PathLike[str]) -> Classifier:
    """Load the model and settings written by ``fit_classifier(out_dir=...)``.

    Raises:
        ModelNotFoundError: ``out_dir`` lacks ``model.keras`` or ``config.json``.
        InvalidModelError: ``model.keras`` is empty, not a zip, or damaged.
    """
    folder = Path(out_dir)
    model_path, config_path = folder / FILES["model"], folder / FILES["config"]
    for path in (model_path, config_path):
        if not path.is_file():
            raise ModelNotFoundError(
                f"Expected a training output folder with {FILES['model']} and "
                f"{FILES['config']}. Received: {str(folder)!r}, which lacks {path.name}.",
                path=str(folder),
                fix=Fix(
                    "Pass the out_dir of fit_classifier.",
                    "Pass --model the --out folder of `hublayer train`.",
                ),
            )
    import hublayer.layers  # noqa: F401  (registers KerasLayer, BackboneCall, TextChain)
    from hublayer.models import load_keras_file

    settings: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
    model = load_keras_file(model_path)
    spec_fields = settings["input"]
    spec = TensorInfo(
        name=spec_fields["name"],
        dtype=spec_fields["dtype"],
        shape=tuple(spec_fields["shape"]),
        value_range=None
        if spec_fields["value_range"] is None
        else tuple(spec_fields["value_range"]),
        range_source=spec_fields.get("range_source"),  # the range training used, and why
    )
    return Classifier(model, tuple(settings["class_names"]), settings["label"], spec, settings)


def _classes(classifier: Classifier) -> Classes:
    return Classes(classifier.class_names, bool(classifier.settings.get("labels_are_strings")))


def _has_feature(files: tuple[str, ...], name: str) -> bool:
    return name in records.inspect(list(files))


def _labels_where_present(source: Source, classes: Classes, count: int) -> np.ndarray:
    """The class index of every record's label, -1 where a record has none.

    One pass that parses the label feature alone, as optional (so a record without it
    is no error), in the order the prediction pass read the records.

    Raises:
        SpecMismatchError: a label that is not one of the model's classes.
        SchemaError: a record with more than one label value.
    """
    assert source.label is not None  # only called for data that has the label feature
    label = source.label
    stats = source.schema[label]
    if stats.max_length > 1:
        raise SchemaError(
            f"Expected at most one value of the label {label!r} per record. Received: up "
            f"to {stats.max_length} values.",
            feature=label,
            fix=Fix("Pass label= a one-value feature.", "Pass --label a one-value feature."),
        )
    optional = dataclasses.replace(stats, missing=max(stats.missing, 1e-9))  # read as ragged
    only_label = dataclasses.replace(source.schema, features=(optional,))
    lengths, values = [np.zeros([0], np.int64)], []
    for batch in records.dataset(list(source.files), only_label, batch_size=1024, shuffle=False):
        column = batch[label] if isinstance(batch, dict) else batch
        lengths.append(column.row_lengths().numpy())
        values.append(numpy_labels(column.flat_values))
    has = np.concatenate(lengths) > 0
    if len(has) != count:  # pragma: no cover - both passes read the same files in order
        raise RecordError(
            f"Expected {count} labels, one per record predicted. Received: {len(has)} "
            "records on a second pass: the files changed while they were read. Run it again."
        )
    labels = np.full(len(has), -1, np.int64)
    if values and has.any():
        raw = np.concatenate(values)
        names = source.label_names
        if names is not None and raw.dtype.kind in "iu":
            raw = np.array(
                [names[i] if 0 <= i < len(names) else f"<label {i} outside the label map>"
                 for i in raw.tolist()]
            )  # fmt: skip
        labels[has] = classes.encode(raw, split="data", feature=label)
    return labels


def predict(
    out_dir: str | os.PathLike[str] | Classifier,
    data: records.Files,
    *,
    batch_size: int = _BATCH,
    output: str | os.PathLike[str] | None = None,
) -> Predictions:
    """Class probabilities for every record of ``data``.

    Args:
        out_dir: a training output folder, or a loaded :class:`Classifier`.
        data: TFRecord files (a file, glob, folder, URL or a list, as
            ``records.expand_files`` reads them); the label is optional, record by
            record: every record is predicted, and the accuracy is scored on those that
            have the label (``Predictions.labelled`` says how many). When the records'
            labels are not the model's classes, the predictions come without labels or
            accuracy, and a warning (logger ``hublayer.train``) says why.
        batch_size: records per batch.
        output: also write the predictions as CSV here.

    Returns:
        The :class:`Predictions` (with the true labels when the records have them).

    Raises:
        ModelNotFoundError: ``out_dir`` is not a training output folder.
        SpecMismatchError: the records cannot feed the model, or their label map names
            classes the model lacks.
        RecordError: no file matches ``data``, or an image in it does not decode.
        OutputNotWritableError: ``output`` cannot be written (checked first).
    """
    if output is not None:
        check_writable(
            Path(output).parent, what="the predictions'", flag="--output", argument="output="
        )
    classifier = out_dir if isinstance(out_dir, Classifier) else load_classifier(out_dir)
    files = tuple(records.expand_files(data, role="data"))
    label = classifier.label if _has_feature(files, classifier.label) else None
    source = classifier.source(files, label=label, name="data")
    # Every record is predicted, labelled or not; the labels are read in a pass of their own.
    inputs = dataclasses.replace(
        source, label=None, options={**source.options, "schema": source.schema}
    )
    dataset = inputs.dataset(batch_size=batch_size, shuffle=False)
    with naming_bad_images(files):
        probabilities, _ = predict_batches(classifier.model, dataset)
    labels = None
    if label is not None:
        try:
            labels = _labels_where_present(source, _classes(classifier), len(probabilities))
        except SpecMismatchError as error:  # the predictions stand; the accuracy cannot
            _log.warning(
                "Predicted %d records without an accuracy: their labels (feature %r) are "
                "not the model's classes. %s",
                len(probabilities),
                classifier.label,
                error,
            )
    result = Predictions(probabilities, classifier.class_names, labels)
    if output is not None:
        result.write_csv(output)
    return result


def evaluate(
    out_dir: str | os.PathLike[str] | Classifier,
    data: records.Files,
    *,
    label: str | None = None,
    batch_size: int = _BATCH,
    output: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Accuracy, loss and confusion matrix of a trained classifier on labelled records.

    Args:
        out_dir: a training output folder, or a loaded :class:`Classifier`.
        data: labelled TFRecord files (a file, glob, folder, URL or a list).
        label: the label feature (default: the one used in training).
        batch_size: records per batch.
        output: also write the scores here as JSON (written whole, then renamed).

    Returns:
        ``{"examples", "accuracy", "loss", "confusion_matrix", "classes"}``.

    Raises:
        SchemaError: the records have no such label feature.
        SpecMismatchError: a label that is not one of the model's classes (matched by
            name), a label map that names classes the model lacks, or records that
            cannot feed the model.
        RecordError: an image that does not decode (naming the file and record).
        OutputNotWritableError: ``output`` cannot be written (checked first).
    """
    if output is not None:
        check_writable(Path(output).parent, what="the scores'", flag="--output", argument="output=")
    classifier = out_dir if isinstance(out_dir, Classifier) else load_classifier(out_dir)
    files = tuple(records.expand_files(data, role="data"))
    key = label or classifier.label
    if not _has_feature(files, key):
        raise SchemaError(
            f"Expected the records to have the label feature {key!r}. Received: files "
            f"without it, e.g. {files[0]!r}.",
            feature=key,
            fix=Fix(
                "Pass label= the feature holding the class.",
                "Pass --label the feature holding the class.",
            ),
        )
    source = classifier.source(files, label=key, name="data")
    classes = _classes(classifier)
    # Labels that cannot be the model's classes fail now, before the model runs.
    classes.encode(source.labels(), split="evaluation", feature=key)
    dataset = source.dataset(batch_size=batch_size, shuffle=False)
    with naming_bad_images(files):
        probabilities, raw = predict_batches(classifier.model, dataset)
    labels = classes.encode(
        raw if raw is not None else np.zeros([0], np.int64), split="evaluation", feature=key
    )
    scores = score(probabilities, labels, num_classes=len(classifier.class_names))
    scores["classes"] = list(classifier.class_names)
    if output is not None:
        target = Path(output)
        temp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
        temp.write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
        os.replace(temp, target)
    return scores
