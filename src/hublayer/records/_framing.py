"""TFRecord framing: read and write the record container, checking every CRC.

A TFRecord file is a sequence of records; each record is framed as (integers are
little-endian)::

    offset  size  field
    0       8     length            uint64, the number of data bytes
    8       4     length_crc        masked CRC32C of the 8 length bytes
    12      N     data              the record (usually a serialized tf.train.Example)
    12+N    4     data_crc          masked CRC32C of the data

    masked_crc(b) = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) mod 2**32,  crc = CRC32C(b)

A compressed file (``GZIP`` or ``ZLIB``) compresses this whole stream; offsets in errors
are positions in the uncompressed stream, which equal file offsets for plain files.

Reading is in :mod:`._reader` (over :mod:`._reader_input`), writing in :mod:`._writer`;
this module holds the format.

Example:
    >>> import struct
    >>> data = b"hello"
    >>> length = struct.pack("<Q", len(data))
    >>> framed = length + struct.pack("<I", masked_crc(length)) + data
    >>> framed += struct.pack("<I", masked_crc(data))
    >>> len(framed) == HEADER_SIZE + len(data) + FOOTER_SIZE
    True
"""

from __future__ import annotations

import os
import struct
from typing import Literal, TypeAlias

import crc32c as _crc32c

from hublayer.errors import RecordError
from hublayer.records._files import open_file

__all__ = [
    "FOOTER",
    "FOOTER_SIZE",
    "HEADER",
    "HEADER_SIZE",
    "MASK_DELTA",
    "Compression",
    "OnError",
    "detect_compression",
    "masked_crc",
    "normalize_compression",
    "open_error",
]

HEADER = struct.Struct("<QI")  # length, masked CRC of the length
FOOTER = struct.Struct("<I")  # masked CRC of the data
HEADER_SIZE = HEADER.size  # 12
FOOTER_SIZE = FOOTER.size  # 4
MASK_DELTA = 0xA282EAD8
U32 = 0xFFFFFFFF
_GZIP_MAGIC = b"\x1f\x8b"

#: "" for none, "GZIP" or "ZLIB" (TensorFlow's spellings); "auto" detects.
Compression: TypeAlias = Literal["", "GZIP", "ZLIB", "auto"]
OnError: TypeAlias = Literal["raise", "skip"]


def masked_crc(data: bytes | memoryview) -> int:
    """The masked CRC32C that TFRecord stores after the length and after the data.

    Example:
        >>> hex(masked_crc(b""))
        '0xa282ead8'
    """
    crc: int = _crc32c.crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & U32) + MASK_DELTA) & U32


def normalize_compression(compression: str | None) -> str:
    """``compression`` in TensorFlow's spelling: ``""``, ``"GZIP"``, ``"ZLIB"`` or ``"auto"``.

    Any case is accepted, and None or ``"NONE"`` mean ``""``.

    Raises:
        ValueError: anything else, a non-string included (``compression=5``).

    Example:
        >>> normalize_compression("gzip"), normalize_compression(None)
        ('GZIP', '')
    """
    if compression is not None and not isinstance(compression, str):
        raise ValueError(
            'Expected compression to be one of "", "GZIP", "ZLIB" or "auto" (a string, or '
            f"None). Received: compression={compression!r} of type "
            f"{type(compression).__name__}."
        )
    value = (compression or "").upper()
    if value in ("", "NONE"):
        return ""
    if value in ("GZIP", "ZLIB", "AUTO"):
        return value.lower() if value == "AUTO" else value
    raise ValueError(
        'Expected compression to be one of "", "GZIP", "ZLIB" or "auto". '
        f"Received: compression={compression!r}."
    )


def detect_compression(path: str | os.PathLike[str]) -> str:
    """Guess a file's compression from its first bytes: ``""``, ``"GZIP"`` or ``"ZLIB"``.

    A valid plain record header wins; then the gzip magic number; then a zlib header.

    Raises:
        RecordError: when the file cannot be opened.
    """
    try:
        with open_file(path) as f:
            head = f.read(HEADER_SIZE)
    except OSError as error:
        raise open_error(path, error) from error
    if len(head) == HEADER_SIZE and masked_crc(head[:8]) == HEADER.unpack(head)[1]:
        return ""
    if head.startswith(_GZIP_MAGIC):
        return "GZIP"
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
        return "ZLIB"
    return ""


def open_error(path: str | os.PathLike[str], error: OSError) -> RecordError:
    reason = "no such file" if isinstance(error, FileNotFoundError) else str(error)
    return RecordError(
        f"Expected a readable TFRecord file at {os.fspath(path)!r}. Received: {reason}. "
        "Check the path and its permissions.",
        file=os.fspath(path),
    )
