"""TFRecord files: read, write, inspect, and feed them to a model through tf.data.

- Framing (``Reader``, ``Writer``, ``read_records``): the record container with CRC32C
  checks, GZIP and ZLIB, atomic sharded writes. No TensorFlow needed.
- Examples (``encode_example``, ``decode_example`` and the SequenceExample pair):
  ``tf.train.Example`` to and from dicts of numpy arrays, without TensorFlow.

Nothing here imports Keras; TensorFlow is imported only by the pipeline builders.

Example:
    >>> from hublayer import records
    >>> with records.Writer("out", shards=2) as writer:  # doctest: +SKIP
    ...     writer.write(b"...")
"""

from __future__ import annotations

from hublayer.records._example import (
    decode_example,
    decode_sequence_example,
    encode_example,
    encode_sequence_example,
)
from hublayer.records._framing import Reader, Writer, read_records

__all__ = [
    "Reader",
    "Writer",
    "decode_example",
    "decode_sequence_example",
    "encode_example",
    "encode_sequence_example",
    "read_records",
]
