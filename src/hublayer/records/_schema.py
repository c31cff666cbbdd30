"""What a set of TFRecord files holds: per-feature kind, length, missing rate, content.

A :class:`Schema` comes from :func:`hublayer.records.inspect`. It prints as a table,
saves as JSON next to the data, and turns into a ``tf.io.parse_example`` spec::

    kind, length seen in the sample          parse spec
    ------------------------------------     ---------------------------------------------
    always present, always 1 value           FixedLenFeature([], dtype)       (a scalar)
    always present, always N values          FixedLenFeature([N], dtype)
    anything else (varies, or missing)       RaggedFeature(dtype)  or  VarLenFeature(dtype)

Example:
    >>> schema = Schema(features=(FeatureStats("label", "int64", 10, 0.0, 1, 1, 1.0),),
    ...                 records=10)
    >>> schema["label"].is_fixed, schema["label"].shape
    (True, ())
    >>> Schema.from_json(schema.to_json()) == schema
    True
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from hublayer.errors import SchemaError

__all__ = ["Content", "FeatureStats", "ImageStats", "Kind", "Schema"]

#: The three value kinds of a tf.train.Feature, "mixed" when records disagree, or None
#: when every sampled value was an empty, kind-less feature.
Kind: TypeAlias = Literal["bytes", "float", "int64", "mixed"]
#: What bytes values hold.
Content: TypeAlias = Literal["image", "text", "binary"]

_DTYPES = {"bytes": "string", "float": "float32", "int64": "int64"}
_FORMAT = "hublayer.records.Schema"
_VERSION = 1


@dataclass(frozen=True)
class ImageStats:
    """Formats and sizes of the images in one bytes feature.

    Attributes:
        formats: the formats seen, sorted: ``("jpeg",)``, ``("gif", "png")``...
        min_height, max_height, min_width, max_width: pixel sizes seen.
        channels: the distinct channel counts seen (1 gray, 2 gray+alpha, 3, 4).
    """

    formats: tuple[str, ...]
    min_height: int
    max_height: int
    min_width: int
    max_width: int
    channels: tuple[int, ...]

    @property
    def size(self) -> tuple[int, int] | None:
        """``(height, width)`` when every image has the same size, else None."""
        if self.min_height == self.max_height and self.min_width == self.max_width:
            return (self.min_height, self.min_width)
        return None

    def __str__(self) -> str:
        def span(low: int, high: int) -> str:
            return str(low) if low == high else f"{low}-{high}"

        channels = "/".join(str(c) for c in self.channels)
        return (
            f"{'/'.join(self.formats)} {span(self.min_height, self.max_height)}"
            f"x{span(self.min_width, self.max_width)}x{channels}"
        )


@dataclass(frozen=True)
class FeatureStats:
    """What one feature looks like across the sampled records.

    Attributes:
        name: the feature's key.
        kind: ``"bytes"``, ``"float"``, ``"int64"``, ``"mixed"`` or None (only empty values).
        present: sampled records that have the feature.
        missing: the fraction of sampled records without it (0.0 to 1.0).
        min_length, max_length, mean_length: values per record, where present.
        content: for bytes: ``"image"``, ``"text"`` or ``"binary"``.
        image: formats and sizes when ``content == "image"``.
        samples: a few values, formatted for display.
    """

    name: str
    kind: Kind | None
    present: int
    missing: float
    min_length: int
    max_length: int
    mean_length: float
    content: Content | None = None
    image: ImageStats | None = None
    samples: tuple[str, ...] = ()

    @property
    def is_fixed(self) -> bool:
        """Present in every record, always with the same number of values."""
        return self.missing == 0.0 and self.min_length == self.max_length

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The per-record shape for a fixed feature (``()`` for one value), else None."""
        if not self.is_fixed:
            return None
        return () if self.min_length == 1 else (self.min_length,)

    @property
    def dtype(self) -> str:
        """The TensorFlow dtype name the values parse to."""
        if self.kind is None or self.kind == "mixed":
            raise SchemaError(
                f"Expected feature {self.name!r} to hold one kind of value (bytes, float or "
                f"int64). Received: kind={self.kind!r} in the sampled records. Rewrite the "
                "records with one kind, or leave the feature out.",
                feature=self.name,
            )
        return _DTYPES[self.kind]

    @property
    def length(self) -> str:
        """The length as shown in tables: ``"3"`` or ``"1-7 (mean 2.4)"``."""
        if self.min_length == self.max_length:
            return str(self.min_length)
        return f"{self.min_length}-{self.max_length} (mean {self.mean_length:.3g})"

    def parse_spec(self, *, ragged: bool = True) -> Any:
        """The ``tf.io`` feature spec that parses this feature (imports TensorFlow).

        Args:
            ragged: for a feature that is not fixed, ``RaggedFeature`` (the default) or
                ``VarLenFeature`` (a SparseTensor).

        Raises:
            SchemaError: when the kind is mixed or unknown.
        """
        import tensorflow as tf

        dtype = self.dtype
        shape = self.shape
        if shape is not None:
            return tf.io.FixedLenFeature(list(shape), dtype)
        if ragged:
            return tf.io.RaggedFeature(dtype, row_splits_dtype=tf.int64)
        return tf.io.VarLenFeature(dtype)


@dataclass(frozen=True)
class Schema:
    """The features of a set of TFRecord files, from a sample of their records.

    Attributes:
        features: one :class:`FeatureStats` per feature, sorted by name.
        records: how many records were sampled.
        total_records: the exact record count when every record was read, else None.
        estimated_records: for a partial read, the count estimated from file sizes.
        files: the files inspected.
        compression: ``""``, ``"GZIP"`` or ``"ZLIB"``.

    Example:
        >>> schema = records.inspect("data/train-*.tfrecord")  # doctest: +SKIP
        >>> schema["image"].image.size  # doctest: +SKIP
        (256, 256)
        >>> schema.save("data/schema.json")  # doctest: +SKIP
    """

    features: tuple[FeatureStats, ...]
    records: int
    total_records: int | None = None
    estimated_records: int | None = None
    files: tuple[str, ...] = ()
    compression: str = ""
    _by_name: dict[str, FeatureStats] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.features, key=lambda f: f.name))
        object.__setattr__(self, "features", ordered)
        object.__setattr__(self, "_by_name", {f.name: f for f in ordered})

    # -- lookup --------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """The feature names, sorted."""
        return tuple(self._by_name)

    def __getitem__(self, name: str) -> FeatureStats:
        try:
            return self._by_name[name]
        except KeyError:
            raise SchemaError(
                f"Expected a feature of these records. Received: {name!r}. "
                f"Available: {', '.join(self.names) or '(none)'}.",
                feature=name,
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[FeatureStats]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def without(self, *names: str | None) -> Schema:
        """This schema less the named features (``None`` names are ignored).

        Example:
            >>> schema.without("label").names  # doctest: +SKIP
            ('image',)
        """
        dropped = {name for name in names if name is not None}
        kept = tuple(f for f in self.features if f.name not in dropped)
        return dataclasses.replace(self, features=kept)

    def images(self) -> tuple[FeatureStats, ...]:
        """The bytes features that hold images."""
        return tuple(f for f in self.features if f.content == "image")

    def texts(self) -> tuple[FeatureStats, ...]:
        """The bytes features that hold UTF-8 text."""
        return tuple(f for f in self.features if f.content == "text")

    # -- parsing -------------------------------------------------------------------------
    def parse_spec(
        self, names: tuple[str, ...] | list[str] | None = None, *, ragged: bool = True
    ) -> dict[str, Any]:
        """A ``tf.io.parse_example`` spec for some or all features (imports TensorFlow).

        Args:
            names: the features to parse; None for every feature with a known kind.
            ragged: ``RaggedFeature`` (the default) or ``VarLenFeature`` for features
                that are not fixed.

        Raises:
            SchemaError: an unknown name, or a feature of mixed or unknown kind.

        Example:
            >>> schema.parse_spec(["label"])  # doctest: +SKIP
            {'label': FixedLenFeature(shape=[], dtype=tf.int64, default_value=None)}
        """
        if names is None:
            names = [f.name for f in self.features if f.kind not in (None, "mixed")]
        return {name: self[name].parse_spec(ragged=ragged) for name in names}

    # -- JSON ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (see :meth:`from_dict`)."""
        body = dataclasses.asdict(self)
        body.pop("_by_name", None)
        return {"format": _FORMAT, "version": _VERSION, **body}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        """Rebuild a schema from :meth:`to_dict` output.

        Raises:
            SchemaError: when ``data`` is not a hublayer schema of a known version.
        """
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise SchemaError(
                f'Expected a hublayer schema (a JSON object with "format": "{_FORMAT}"). '
                f"Received: {str(data)[:80]!r}. Write one with Schema.save().",
            )
        if data.get("version") != _VERSION:
            raise SchemaError(
                f"Expected schema version {_VERSION}. Received: version={data.get('version')!r}."
                " Inspect the files again with this version of hublayer."
            )
        try:
            features = tuple(
                FeatureStats(
                    **{
                        **f,
                        "samples": tuple(f.get("samples", ())),
                        "image": None
                        if f.get("image") is None
                        else ImageStats(
                            **{
                                **f["image"],
                                "formats": tuple(f["image"]["formats"]),
                                "channels": tuple(f["image"]["channels"]),
                            }
                        ),
                    }
                )
                for f in data["features"]
            )
            return cls(
                features=features,
                records=data["records"],
                total_records=data.get("total_records"),
                estimated_records=data.get("estimated_records"),
                files=tuple(data.get("files", ())),
                compression=data.get("compression", ""),
            )
        except (KeyError, TypeError) as error:
            raise SchemaError(
                f"Expected a complete hublayer schema. Received: a field is wrong ({error}). "
                "Write it again with Schema.save()."
            ) from None

    def to_json(self) -> str:
        """The schema as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Schema:
        """Parse :meth:`to_json` output.

        Raises:
            SchemaError: for text that is not JSON or not a schema.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SchemaError(
                f"Expected schema JSON. Received: text that is not JSON ({error})."
            ) from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the schema as JSON (atomically) and return the path."""
        target = Path(path)
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temp.write_text(self.to_json(), encoding="utf-8")
        os.replace(temp, target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Schema:
        """Read a schema written by :meth:`save`.

        Raises:
            FileNotFoundError: no file at ``path``.
            SchemaError: the file is not a schema.
        """
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    # -- display -------------------------------------------------------------------------
    def __str__(self) -> str:
        count = (
            f"{self.total_records} records"
            if self.total_records is not None
            else f"~{self.estimated_records or self.records} records (sampled {self.records})"
        )
        header = ("feature", "kind", "length", "missing", "content", "samples")
        rows = [
            (
                f.name,
                f.kind or "-",
                f.length,
                f"{f.missing:.1%}" if f.missing else "0",
                str(f.image) if f.image else (f.content or ""),
                "; ".join(f.samples),
            )
            for f in self.features
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
        lines = [f"{len(self.files)} file(s), {count}"]
        for row in [header, *rows]:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            lines.append("  ".join([*cells, row[-1]]).rstrip())
        return "\n".join(lines)
