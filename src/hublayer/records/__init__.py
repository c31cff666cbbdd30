"""TFRecord files: read, write, inspect, and feed them to a model through tf.data.

- File sets (``expand_files``, ``Files``): what ``files`` means in every entry point: a
  file, a folder, a glob, a URL (``gs://``, ``s3://``... through fsspec) or a list.
- Framing (``Reader``, ``Writer``, ``read_records``): the record container with CRC32C
  checks, GZIP and ZLIB, atomic sharded writes. No TensorFlow needed.
- Examples (``encode_example``, ``decode_example`` and the SequenceExample pair):
  ``tf.train.Example`` to and from dicts of numpy arrays, without TensorFlow.
- Random access (``index``, ``Source``): a DALI-compatible index per file, and the files
  as a map-style source (``len``, ``src[i]``) for grain, PyTorch or any sampler; every
  CRC checked, no TensorFlow.
- Schemas (``inspect``, ``Schema``): what the records hold, from a sample; JSON; parse
  specs for ``tf.io.parse_example``.
- Pipelines (``dataset``, ``ImageOptions``): ``(features, label)`` batches for
  ``model.fit``, matched to a model's input spec, following tf.data's best practice.
- Ray (``ray_dataset``, ``SkippedRecords``): the files as a Ray Data dataset, read by
  the reader above; the counts of records it skipped, on the driver.
- Converters (``convert_images``, ``convert_image_splits``, ``convert_csv``,
  ``convert_parquet``, ``write_arrays``, ``convert_records``): image folders, tables,
  arrays and other TFRecord files (recompressed, resharded) to shards;
  class names in a ``LabelMap`` beside the shards (``find_label_map`` reads it back).

Nothing here imports Keras; TensorFlow is imported only by the pipeline builders.

Example:
    >>> from hublayer import records
    >>> with records.Writer("out", shards=2) as writer:  # doctest: +SKIP
    ...     writer.write(b"...")
"""

from __future__ import annotations

from hublayer.records._convert import WriteSummary, convert_csv, convert_parquet, write_arrays
from hublayer.records._copy import convert_records
from hublayer.records._example import (
    decode_example,
    decode_sequence_example,
    encode_example,
    encode_sequence_example,
)
from hublayer.records._files import Files, expand_files, fingerprint_files, is_url
from hublayer.records._folders import convert_image_splits, convert_images, image_problem
from hublayer.records._index import index
from hublayer.records._inspect import inspect, verify_images
from hublayer.records._label_map import LabelMap, find_label_map
from hublayer.records._options import ImageOptions
from hublayer.records._parser import ExampleParser, parser
from hublayer.records._pipeline import dataset
from hublayer.records._ray import ray_dataset
from hublayer.records._ray_skips import SkippedRecords
from hublayer.records._reader import Reader, read_records
from hublayer.records._schema import FeatureStats, ImageStats, Schema
from hublayer.records._source import Source
from hublayer.records._writer import Writer

__all__ = [
    "ExampleParser",
    "FeatureStats",
    "Files",
    "ImageOptions",
    "ImageStats",
    "LabelMap",
    "Reader",
    "Schema",
    "SkippedRecords",
    "Source",
    "WriteSummary",
    "Writer",
    "convert_csv",
    "convert_image_splits",
    "convert_images",
    "convert_parquet",
    "convert_records",
    "dataset",
    "decode_example",
    "decode_sequence_example",
    "encode_example",
    "encode_sequence_example",
    "expand_files",
    "find_label_map",
    "fingerprint_files",
    "image_problem",
    "index",
    "inspect",
    "is_url",
    "parser",
    "ray_dataset",
    "read_records",
    "verify_images",
    "write_arrays",
]
