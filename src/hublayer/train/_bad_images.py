"""Name the record behind TensorFlow's image decode failure, which names no file.

Example:
    >>> with naming_bad_images(["data/train-00000-of-00001.tfrecord"]):  # doctest: +SKIP
    ...     model.fit(dataset)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import tensorflow as tf

from hublayer.errors import Fix, RecordError

__all__ = ["naming_bad_images"]

_DECODE_WORDS = ("jpeg", "png", "gif", "bmp", "decode", "image")


@contextlib.contextmanager
def naming_bad_images(files: Iterable[str]) -> Iterator[None]:
    """Turn TensorFlow's image decode failure ("jpeg::Uncompress failed"), which names
    no file, into a :class:`RecordError` naming the file, the record and the feature.

    On such a failure the files are read again and every image decoded until the bad
    one is found; when none is found, the original error goes on.

    Example:
        >>> with naming_bad_images(["data/train-00000-of-00001.tfrecord"]):  # doctest: +SKIP
        ...     model.fit(dataset)
    """
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        text = str(error).lower()
        if not any(word in text for word in _DECODE_WORDS):
            raise
        from hublayer import records

        bad = records.verify_images(list(files), limit=1)
        if not bad:
            raise
        first = bad[0]
        raise RecordError(
            f"Expected every image to decode. Received: {first}.",
            file=first.file,
            index=first.record,
            fix=Fix(
                "Convert the images again (records.convert_images skips and lists the "
                "files that do not decode); records.verify_images lists every bad record.",
                "Convert the images again (hublayer records convert images skips and lists "
                "the files that do not decode); hublayer records inspect FILES --all lists "
                "every bad record.",
            ),
        ) from None
