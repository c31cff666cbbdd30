"""``records.inspect``: read a sample of records and describe their features.

Sampling keeps it fast on big data: with ``sample=N`` it reads about ``N / files`` records
from the head of each file (from at most ``N`` files, spread evenly), so big data costs
little more than small (the ``inspect`` case of ``benchmarks/RESULTS.md`` times it on
1 GB of shards). Record counts are exact when every record was read, and
estimated from file sizes otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import numpy as np

from hublayer.errors import RecordError, SchemaError
from hublayer.records._example import decode_example
from hublayer.records._files import Files, expand_files, file_size
from hublayer.records._framing import FOOTER_SIZE, HEADER_SIZE, Compression, OnError
from hublayer.records._reader import Reader
from hublayer.records._schema import Content, FeatureStats, ImageStats, Kind, Schema
from hublayer.records._sniff import ImageInfo, is_text, sniff_image

__all__ = ["BadImage", "inspect", "verify_images"]

_KINDS = {"f": "float", "i": "int64", "O": "bytes"}
_SAMPLES = 3
_BUFFER = 1 << 18


def _show_bytes(value: bytes, image: ImageInfo | None) -> str:
    if image is not None:
        return f"{image.format} {image.height}x{image.width}x{image.channels} ({len(value):,} B)"
    if is_text(value):
        text = value.decode("utf-8", errors="replace")
        return repr(text if len(text) <= 24 else text[:21] + "...")
    return f"<{len(value):,} bytes>"


def _show(values: np.ndarray, images: list[ImageInfo | None]) -> str:
    if values.dtype == object:
        shown = [_show_bytes(v, i) for v, i in zip(values[:2], images, strict=False)]
    else:
        shown = [f"{v:.4g}" if values.dtype.kind == "f" else str(v) for v in values[:4].tolist()]
    more = len(values) - len(shown)
    inner = ", ".join(shown) + (f", ... (+{more})" if more > 0 else "")
    return inner if len(values) == 1 else f"[{inner}]"


@dataclass
class _Feature:
    """Running statistics of one feature."""

    kinds: set[str] = field(default_factory=set)
    present: int = 0
    lengths: list[int] = field(default_factory=list)
    values: int = 0
    images: int = 0
    texts: int = 0
    formats: set[str] = field(default_factory=set)
    channels: set[int] = field(default_factory=set)
    heights: list[int] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    def add(self, values: np.ndarray) -> None:
        self.present += 1
        self.lengths.append(len(values))
        if len(values):
            self.kinds.add(_KINDS[values.dtype.kind])
        infos: list[ImageInfo | None] = []
        if values.dtype == object:
            for value in values:
                self.values += 1
                info = sniff_image(value)
                infos.append(info)
                if info is not None:
                    self.images += 1
                    self.formats.add(info.format)
                    self.channels.add(info.channels)
                    self.heights.append(info.height)
                    self.widths.append(info.width)
                elif is_text(value):
                    self.texts += 1
        if len(self.samples) < _SAMPLES and len(values):
            self.samples.append(_show(values, infos))

    def stats(self, name: str, records: int) -> FeatureStats:
        kind: Kind | None = None
        if len(self.kinds) == 1:
            kind = cast("Kind", next(iter(self.kinds)))
        elif self.kinds:
            kind = "mixed"
        content: Content | None = None
        image = None
        if kind == "bytes":
            if self.images and self.images == self.values:
                content = "image"
                image = ImageStats(
                    formats=tuple(sorted(self.formats)),
                    min_height=min(self.heights),
                    max_height=max(self.heights),
                    min_width=min(self.widths),
                    max_width=max(self.widths),
                    channels=tuple(sorted(self.channels)),
                )
            elif self.texts == self.values:
                content = "text"
            else:
                content = "binary"
        return FeatureStats(
            name=name,
            kind=kind,
            present=self.present,
            missing=1.0 - self.present / records,
            min_length=min(self.lengths),
            max_length=max(self.lengths),
            mean_length=round(sum(self.lengths) / len(self.lengths), 6),
            content=content,
            image=image,
            samples=tuple(self.samples),
        )


def _pick(paths: list[Any], sample: int | None) -> list[Any]:
    if sample is None or len(paths) <= sample:
        return paths
    step = len(paths) / sample
    return [paths[int(i * step)] for i in range(sample)]


def inspect(
    files: Files,
    sample: int | None = 1000,
    *,
    compression: Compression | str | None = "auto",
    on_error: OnError = "raise",
) -> Schema:
    """Describe the features of TFRecord files of ``tf.train.Example`` records.

    Args:
        files: a path, glob pattern, folder, URL, or a list of them.
        sample: about how many records to read, spread over the files; None reads every
            record (exact statistics and count, at the cost of a full pass).
        compression: ``"auto"`` (the default) detects it per file; or ``""``, ``"GZIP"``,
            ``"ZLIB"``.
        on_error: ``"raise"`` or ``"skip"`` bad records, as for :class:`Reader`.

    Returns:
        A :class:`Schema`: per feature its kind, length (fixed or min/mean/max), missing
        fraction, and for bytes whether they are images (format, sizes, channels) or
        text; plus a few sample values.

    Raises:
        RecordError: a missing file, a corrupt record, or a record that is not an Example.
        SchemaError: the files hold no records at all.
        ValueError: ``sample`` is not a positive int or None.

    Example:
        >>> from hublayer import records
        >>> schema = records.inspect("data/train-*.tfrecord", sample=500)  # doctest: +SKIP
        >>> print(schema)  # doctest: +SKIP
        8 file(s), ~20000 records (sampled 504)
        feature  kind   length  missing  content         samples
        image    bytes  1       0        jpeg 256x256x3  jpeg 256x256x3 (14,022 B); ...
        label    int64  1       0                        3; 7; 0
    """
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int)):
        raise ValueError(f"Expected sample to be a positive int or None. Received: {sample!r}.")
    if sample is not None and sample < 1:
        raise ValueError(f"Expected sample to be a positive int or None. Received: {sample!r}.")
    paths = expand_files(files)
    chosen = _pick(paths, sample)
    quota = math.inf if sample is None else math.ceil(sample / len(chosen))
    stats: dict[str, _Feature] = {}
    records = 0
    estimated = 0.0
    exact = len(chosen) == len(paths)
    compressions: set[str] = set()
    for path in chosen:
        reader = Reader(path, compression=compression, on_error=on_error, buffer_size=_BUFFER)
        read, finished = 0, True
        with reader:
            compressions.add(reader.compression)
            for record in reader:
                _add(stats, _decode(record, reader))
                records += 1
                read += 1
                if read >= quota:
                    finished = False
                    break
            estimated += read if finished else reader.estimate_count()
        exact = exact and finished
    if records == 0:
        raise SchemaError(
            f"Expected records to describe. Received: {len(chosen)} file(s) with no records "
            f"({', '.join(str(p) for p in chosen[:3])}{', ...' if len(chosen) > 3 else ''}). "
            "Check that the files were written completely."
        )
    if len(chosen) < len(paths):
        total_size = sum(file_size(p) for p in paths)
        chosen_size = sum(file_size(p) for p in chosen) or 1
        estimated *= total_size / chosen_size
    return Schema(
        features=tuple(s.stats(name, records) for name, s in stats.items()),
        records=records,
        total_records=records if exact else None,
        estimated_records=None if exact else round(estimated),
        files=tuple(str(p) for p in paths),
        compression="/".join(sorted(compressions)),
    )


def _decode(record: bytes, reader: Reader) -> dict[str, Any]:
    """Decode one record, naming the file, index and offset when it is not an Example."""
    try:
        return decode_example(record)
    except RecordError as error:
        offset = reader.offset - len(record) - HEADER_SIZE - FOOTER_SIZE
        raise RecordError(
            f"{error} In {str(reader.path)!r}, record {reader.count - 1} at byte offset {offset}.",
            file=str(reader.path),
            index=reader.count - 1,
            offset=offset,
        ) from None


def _add(stats: dict[str, _Feature], example: dict[str, Any]) -> None:
    for name, values in example.items():
        feature = stats.get(name)
        if feature is None:
            feature = stats[name] = _Feature()
        feature.add(values)


class BadImage(NamedTuple):
    """An image value that does not decode, and where it is."""

    file: str
    record: int
    feature: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}, record {self.record}, feature {self.feature!r}: {self.problem}"


def verify_images(
    files: Files,
    *,
    features: Collection[str] | None = None,
    compression: Compression | str | None = "auto",
    limit: int | None = None,
) -> list[BadImage]:
    """Decode every image in the records and list those that fail (truncated, corrupt).

    A full pass: every record of every file is read, and every bytes value whose header
    says it is an image (or every value of ``features``, when given) is decoded.

    Args:
        files: a path, glob pattern, folder, URL, or a list of them.
        features: check only these features, and every value of them (a value that is
            not an image at all counts as bad); None checks whatever looks like an image.
        compression: as for :func:`inspect`.
        limit: stop after this many bad images (None finds them all).

    Returns:
        The bad images, in file order: file, record index, feature and the problem.

    Raises:
        RecordError: a missing file or a corrupt record.

    Example:
        >>> for bad in verify_images("data/train-*.tfrecord"):  # doctest: +SKIP
        ...     print(bad)
        data/train-00001-of-00002.tfrecord, record 17, feature 'image': cannot be decoded...
    """
    from hublayer.records._folders import image_problem

    bad: list[BadImage] = []
    for path in expand_files(files):
        with Reader(path, compression=compression, buffer_size=_BUFFER) as reader:
            for index, record in enumerate(reader):
                for name, values in _decode(record, reader).items():
                    if values.dtype != object or (features is not None and name not in features):
                        continue
                    for value in values:
                        if features is None and sniff_image(value) is None:
                            continue
                        problem = image_problem(bytes(value))
                        if problem is not None:
                            bad.append(BadImage(str(path), index, name, problem))
                            if limit is not None and len(bad) >= limit:
                                return bad
    return bad
