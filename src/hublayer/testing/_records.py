"""Labelled image TFRecords that a small model can learn, for tests, examples and tours.

Each record is a ``tf.train.Example`` with an encoded ``image`` (PNG or JPEG) and an int64
``label``: the layout ``hublayer records convert images`` writes. Class ``k`` brightens
colour channel ``k % 3`` (and, past three classes, a quadrant), so a frozen feature
extractor plus a linear head separates the classes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hublayer.records import Writer, encode_example

__all__ = ["image_records"]

_FORMATS = ("png", "jpeg")


def image_records(
    out: str | os.PathLike[str],
    count: int,
    *,
    classes: int = 3,
    size: int = 32,
    image_format: str = "png",
    shards: int = 2,
    seed: int = 0,
) -> str:
    """Write ``count`` labelled images as TFRecord shards and return their glob.

    Args:
        out: the shard name prefix (``out-00000-of-00002.tfrecord``...); its folder is
            created.
        count: how many records.
        classes: how many labels (``0 .. classes-1``), at least 2.
        size: the images' height and width in pixels.
        image_format: ``"png"`` or ``"jpeg"``.
        shards: how many files.
        seed: the random seed; the same arguments write the same records.

    Returns:
        A glob matching the shards, for ``records.dataset`` or ``hublayer train --train``.

    Raises:
        ValueError: a count, class number, size or format out of range.

    Example:
        >>> from hublayer import records, testing
        >>> files = testing.image_records("/tmp/tiny/train", 30, size=16)
        >>> records.inspect(files).total_records
        30
    """
    if count < 1 or classes < 2 or size < 4 or shards < 1:
        raise ValueError(
            "Expected count >= 1, classes >= 2, size >= 4 and shards >= 1. "
            f"Received: count={count}, classes={classes}, size={size}, shards={shards}."
        )
    if image_format not in _FORMATS:
        raise ValueError(
            f"Expected image_format to be one of {_FORMATS}. Received: {image_format!r}."
        )
    import tensorflow as tf  # the encoders; imported only when records are written

    encode = tf.io.encode_png if image_format == "png" else tf.io.encode_jpeg
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, count)
    half = size // 2
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    writer = Writer(out, shards=min(shards, count))
    with writer:
        for label in labels:
            pixels = rng.integers(0, 90, (size, size, 3))
            quadrant = (label // 3) % 4
            rows = slice(0, half) if quadrant in (1, 2) else slice(None)
            cols = slice(half, None) if quadrant in (2, 3) else slice(None)
            pixels[rows, cols, label % 3] += 160
            image = bytes(encode(tf.constant(pixels.astype(np.uint8))).numpy())
            writer.write(encode_example({"image": image, "label": np.int64(label)}))
    first = writer.paths[0]
    return str(first.with_name(first.name.replace("-00000-of-", "-*-of-", 1)))
