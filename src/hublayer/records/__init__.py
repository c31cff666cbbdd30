"""TFRecord files: read, write, inspect, and feed them to a model through tf.data.

- Framing (``Reader``, ``Writer``, ``read_records``): the record container with CRC32C
  checks, GZIP and ZLIB, atomic sharded writes. No TensorFlow needed.
- Examples (``encode_example``, ``decode_example`` and the SequenceExample pair):
  ``tf.train.Example`` to and from dicts of numpy arrays, without TensorFlow.
- Schemas (``inspect``, ``Schema``): what the records hold, from a sample; JSON; parse
  specs for ``tf.io.parse_example``.
- Pipelines (``dataset``, ``ImageOptions``): ``(features, label)`` batches for
  ``model.fit``, matched to a model's input spec, following tf.data's best practice.
- Converters (``convert_images``, ``convert_csv``, ``convert_parquet``,
  ``write_arrays``): image folders, tables and arrays to shards.

Nothing here imports Keras; TensorFlow is imported only by the pipeline builders.

Example:
    >>> from hublayer import records
    >>> with records.Writer("out", shards=2) as writer:  # doctest: +SKIP
    ...     writer.write(b"...")
"""

from __future__ import annotations

from hublayer.records._convert import WriteSummary, convert_csv, convert_parquet, write_arrays
from hublayer.records._example import (
    decode_example,
    decode_sequence_example,
    encode_example,
    encode_sequence_example,
)
from hublayer.records._folders import convert_images
from hublayer.records._inspect import inspect
from hublayer.records._options import ImageOptions
from hublayer.records._pipeline import dataset
from hublayer.records._reader import Reader, read_records
from hublayer.records._schema import FeatureStats, ImageStats, Schema
from hublayer.records._writer import Writer

__all__ = [
    "FeatureStats",
    "ImageOptions",
    "ImageStats",
    "Reader",
    "Schema",
    "WriteSummary",
    "Writer",
    "convert_csv",
    "convert_images",
    "convert_parquet",
    "dataset",
    "decode_example",
    "decode_sequence_example",
    "encode_example",
    "encode_sequence_example",
    "inspect",
    "read_records",
    "write_arrays",
]
