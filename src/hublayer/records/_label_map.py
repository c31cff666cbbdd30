"""Class names kept beside the shards: ``OUT.label_map.json``.

::

    data/train-00000-of-00002.tfrecord   label: int64, an index into "classes"
    data/train-00001-of-00002.tfrecord
    data/train.label_map.json            {"classes": ["cat", "dog"], "label": "label",
                                          "image": "image"}

The map of a file is found from its name: the shard numbers and the ``.tfrecord`` suffix
are dropped, and ``.label_map.json`` is added. Every split converted with the same
classes holds the same map, so index ``i`` means the same class in train and test.

Example:
    >>> label_map_path("data/train-00001-of-00008.tfrecord").name
    'train.label_map.json'
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hublayer.errors import SchemaError
from hublayer.records._files import is_url, open_file

__all__ = ["LabelMap", "find_label_map", "label_map_path", "write_label_map"]

SUFFIX = ".label_map.json"
_SHARD = re.compile(r"^(?P<stem>.+)-\d{5}-of-\d{5}(?:\.tfrecords?|\.tfr)?$")
_SUFFIXES = (".tfrecord", ".tfrecords", ".tfr")


def label_map_path(path: str | os.PathLike[str]) -> Path:
    """Where the label map of a shard, a file or an output prefix lives."""
    target = Path(path)
    match = _SHARD.match(target.name)
    stem = match["stem"] if match else target.name
    for suffix in _SUFFIXES:
        stem = stem.removesuffix(suffix)
    return target.with_name(stem + SUFFIX)


def _beside(file: str) -> str:
    """:func:`label_map_path` of a local path or a URL (``gs://b/train-00000-of-00002``
    -> ``gs://b/train.label_map.json``)."""
    if not is_url(file):
        return str(label_map_path(file))
    folder, _, name = file.rpartition("/")
    return f"{folder}/{label_map_path(name).name}"


@dataclass(frozen=True)
class LabelMap:
    """The class names an integer label feature indexes.

    Attributes:
        classes: class index to name.
        label: the feature holding the index.
        image: the feature holding the image, if any.
        path: the JSON file it was read from: a Path, or a URL (None when built in
            memory).

    Example:
        >>> LabelMap(("cat", "dog")).name(1)
        'dog'
    """

    classes: tuple[str, ...]
    label: str = "label"
    image: str | None = "image"
    path: Path | str | None = None

    def name(self, index: int) -> str:
        """The class name of label ``index``."""
        return self.classes[index]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LabelMap:
        """Read a label map JSON file.

        Args:
            path: a local path, or a URL read through fsspec (``gs://...``).

        Raises:
            FileNotFoundError: no file at ``path``.
            SchemaError: the file is not a label map (``{"classes": [names...]}``).
        """
        source: Path | str = os.fspath(path) if is_url(path) else Path(path)
        try:
            with open_file(source) as handle:
                raw = handle.read()
        except (FileNotFoundError, IsADirectoryError):
            raise FileNotFoundError(
                f"Expected a label map JSON file at {str(source)!r}. Received: no such file."
            ) from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise SchemaError(
                f"Expected a label map JSON file at {str(source)!r}. Received: a file that is "
                f"not JSON ({error}).",
                feature="label",
            ) from None
        classes = data.get("classes") if isinstance(data, dict) else None
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise SchemaError(
                f'Expected {{"classes": ["name", ...]}} in the label map {str(source)!r}. '
                f"Received: {str(data)[:80]}.",
                feature="label",
            )
        check_classes(classes, where=str(source))
        return cls(tuple(classes), str(data.get("label", "label")), data.get("image"), path=source)


def check_classes(classes: Sequence[str], *, where: str) -> tuple[str, ...]:
    """The class names, checked: at least one, no blank or repeated name."""
    names = tuple(str(c) for c in classes)
    repeated = sorted({c for c in names if names.count(c) > 1})
    blank = [c for c in names if not c.strip()]
    if not names or repeated or blank:
        problem = (
            "no names"
            if not names
            else f"repeated names {repeated}"
            if repeated
            else "a blank name"
        )
        raise ValueError(
            f"Expected distinct, non-empty class names in {where}. Received: {problem}."
        )
    return names


def write_label_map(
    out: str | os.PathLike[str],
    classes: Sequence[str],
    *,
    label: str = "label",
    image: str | None = "image",
) -> Path:
    """Write ``OUT.label_map.json`` (to a temp name, then renamed) and return its path."""
    target = label_map_path(out)
    text = json.dumps({"classes": list(classes), "label": label, "image": image}, indent=2)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temp.write_text(text + "\n", encoding="utf-8")
    os.replace(temp, target)
    return target


def find_label_map(files: Iterable[str | os.PathLike[str]], *, label: str) -> LabelMap | None:
    """The label map beside ``files`` for the feature ``label``, or None when none has one.

    Args:
        files: TFRecord files (paths or URLs, not globs).
        label: the label feature; a map written for another feature does not count.

    Raises:
        SchemaError: some files have a map and others not, or their maps differ.

    Example:
        >>> find_label_map(["data/train-00000-of-00002.tfrecord"], label="label")  # doctest: +SKIP
        LabelMap(classes=('cat', 'dog'), label='label', image='image', path=...)
    """
    found: dict[str, LabelMap | None] = {}
    for file in files:
        where = _beside(os.fspath(file))
        if where not in found:
            try:
                found[where] = LabelMap.load(where)
            except FileNotFoundError:
                found[where] = None
    maps = {k: v for k, v in found.items() if v is not None and v.label == label}
    if not maps:
        return None
    distinct = {m.classes for m in maps.values()}
    without = [str(k) for k, v in found.items() if k not in maps]
    if len(distinct) > 1 or without:
        shown = "; ".join(f"{k}: {list(v.classes)}" for k, v in maps.items())
        missing = f"; no label map: {', '.join(without)}" if without else ""
        raise SchemaError(
            f"Expected one label map for all the files read together. Received: {shown}"
            f"{missing}. Convert the splits with the same classes (hublayer records convert "
            "images --classes/--label-map, or several splits in one call).",
            feature=label,
        )
    return next(iter(maps.values()))
