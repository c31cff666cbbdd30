"""Tell what a bytes value holds from its first bytes: a JPEG, PNG or GIF image, or text.

Only headers are read, never pixels, so sniffing a 10 MB image costs microseconds.

Image headers used (big-endian unless noted)::

    JPEG  FF D8, then segments FF <marker> <len:2>; a SOFn segment (C0-CF but C4, C8, CC)
          holds <precision:1> <height:2> <width:2> <components:1>
    PNG   89 50 4E 47 0D 0A 1A 0A, then IHDR: <width:4> <height:4> <depth:1> <color type:1>
          at offsets 16, 20, 24, 25; color type 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA
    GIF   "GIF87a" or "GIF89a", then <width:2 LE> <height:2 LE>

Example:
    >>> sniff_image(b"GIF89a\\x02\\x00\\x01\\x00" + bytes(10))
    ImageInfo(format='gif', height=1, width=2, channels=3)
    >>> is_text("héllo".encode()), is_text(b"\\xff\\x00")
    (True, False)
"""

from __future__ import annotations

import codecs
from typing import NamedTuple

__all__ = ["ImageInfo", "is_text", "sniff_image"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})
_TEXT_CONTROL = frozenset("\t\n\r\f\v")


class ImageInfo(NamedTuple):
    """Format and size read from an image header."""

    format: str
    height: int
    width: int
    channels: int


def _jpeg(data: bytes) -> ImageInfo | None:
    i, end = 2, len(data)
    while i + 4 <= end:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        if marker == 0xDA:  # start of scan before any frame header
            return None
        if marker in _JPEG_SOF:
            if i + 10 > end:
                return None
            height = data[i + 5] << 8 | data[i + 6]
            width = data[i + 7] << 8 | data[i + 8]
            return ImageInfo("jpeg", height, width, data[i + 9])
        i += 2 + (data[i + 2] << 8 | data[i + 3])
    return None


def sniff_image(data: bytes) -> ImageInfo | None:
    """Read the format, height, width and channels of a JPEG, PNG or GIF.

    Args:
        data: the encoded image (a few hundred leading bytes are enough for most files).

    Returns:
        An :class:`ImageInfo`, or None when ``data`` is none of these formats or its header
        is cut short.
    """
    if data[:2] == b"\xff\xd8":
        return _jpeg(data)
    if data[:8] == _PNG_SIGNATURE and len(data) >= 26 and data[12:16] == b"IHDR":
        width = int.from_bytes(data[16:20], "big")
        height = int.from_bytes(data[20:24], "big")
        channels = _PNG_CHANNELS.get(data[25])
        return None if channels is None else ImageInfo("png", height, width, channels)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width = int.from_bytes(data[6:8], "little")
        height = int.from_bytes(data[8:10], "little")
        return ImageInfo("gif", height, width, 3)
    return None


def is_text(data: bytes, *, limit: int = 1 << 16) -> bool:
    """True when ``data`` is UTF-8 with no control characters but whitespace.

    Only the first ``limit`` bytes are checked (a character cut there is fine).
    """
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(
            data[:limit], final=len(data) <= limit
        )
    except UnicodeDecodeError:
        return False
    return text.isprintable() or all(c.isprintable() or c in _TEXT_CONTROL for c in text)
