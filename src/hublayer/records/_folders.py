"""Turn a folder of class subfolders of images into TFRecord shards and a label map.

::

    DIR/                          OUT-00000-of-00008.tfrecord ... (features below)
    ├── cat/  a.jpg b.png ...     OUT.label_map.json  {"classes": ["cat", "dog"],
    └── dog/  c.jpg ...                                "label": "label", "image": "image"}

    image     bytes   the file's bytes (JPEG, PNG, GIF) or, re-encoded, a JPEG
    label     int64   the index of the class folder, in sorted order
    filename  bytes   the path below DIR
"""

from __future__ import annotations

import io
import json
import os
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hublayer.records._convert import WriteSummary, write_all
from hublayer.records._example import encode_example
from hublayer.records._sniff import sniff_image

__all__ = ["convert_images"]

_KEEP_FORMATS = ("jpeg", "png", "gif")  # formats tf.io.decode_image reads as they are


def _reencode(data: bytes, max_size: int | None, quality: int) -> bytes | None:
    """The image as a JPEG no larger than ``max_size``, or None when PIL cannot read it."""
    from PIL import Image, UnidentifiedImageError  # a dependency; imported when used

    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB") if opened.mode not in ("RGB", "L") else opened.copy()
        if max_size is not None:
            image.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        return buffer.getvalue()
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _image_bytes(path: Path, max_size: int | None, quality: int) -> bytes | None:
    data = path.read_bytes()
    info = sniff_image(data)
    fits = max_size is None or (info is not None and max(info.height, info.width) <= max_size)
    if info is not None and info.format in _KEEP_FORMATS and fits:
        return data
    return _reencode(data, max_size, quality)


def _class_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        raise FileNotFoundError(
            f"Expected a folder of class subfolders at {str(root)!r}. Received: "
            f"{'a file' if root.exists() else 'no such folder'}."
        )
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ValueError(
            f"Expected class subfolders in {str(root)!r} (DIR/cat/*.jpg, DIR/dog/*.jpg). "
            "Received: none. Put the images of each class in a folder named after it."
        )
    return folders


def convert_images(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    shards: int = 8,
    max_size: int | None = None,
    quality: int = 90,
    shuffle: bool = True,
    seed: int = 0,
    compression: str = "",
    progress: bool | None = None,
) -> WriteSummary:
    """Write an image folder with one subfolder per class as shards, plus a label map.

    Args:
        src: the folder; each subfolder is a class, labelled by its index in sorted order.
        out: the shard name prefix: ``data/train`` gives
            ``data/train-00000-of-00008.tfrecord`` and ``data/train.label_map.json``.
        shards: the number of shards.
        max_size: None keeps each file's bytes as they are (JPEG, PNG and GIF; other
            formats are re-encoded as JPEG); a number re-encodes images whose longer
            side is larger to a JPEG of at most that many pixels.
        quality: JPEG quality when re-encoding.
        shuffle: mix the files (reproducibly, with ``seed``) so each shard holds every
            class.
        seed: the shuffle seed.
        compression: ``""``, ``"GZIP"`` or ``"ZLIB"``.
        progress: draw a progress bar (default: ``$HUBLAYER_PROGRESS``, else on a TTY).

    Returns:
        A :class:`WriteSummary`; files that are not images are skipped and counted.

    Raises:
        FileNotFoundError: ``src`` is not a folder.
        ValueError: ``src`` has no class subfolders, or no images at all.

    Example:
        >>> summary = convert_images("flowers/", "data/flowers", shards=4)  # doctest: +SKIP
        >>> print(summary)  # doctest: +SKIP
        Wrote 3,670 examples, 228.1 MB, in 4 shard(s) to data; label map: data/flowers...
    """
    root = Path(src)
    folders = _class_folders(root)
    items = [
        (path, label)
        for label, folder in enumerate(folders)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    ]
    if shuffle:
        random.Random(seed).shuffle(items)
    skipped: list[str] = []

    def rows() -> Iterator[bytes]:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            encoded = pool.map(lambda item: _image_bytes(item[0], max_size, quality), items)
            for (path, label), data in zip(items, encoded, strict=True):
                name = path.relative_to(root).as_posix()
                if data is None:
                    skipped.append(name)
                    continue
                yield encode_example({"image": data, "label": label, "filename": name})

    summary = write_all(
        out,
        rows(),
        shards=shards,
        compression=compression,
        total=len(items),
        progress=progress,
        desc="images",
    )
    if summary.count == 0:
        for path in summary.paths:
            path.unlink(missing_ok=True)
        raise ValueError(
            f"Expected images in the class folders of {str(root)!r}. Received: "
            f"{len(items)} file(s), none of them an image."
        )
    target = Path(out)
    label_map = target.with_name(f"{target.name.removesuffix('.tfrecord')}.label_map.json")
    text = json.dumps(
        {"classes": [f.name for f in folders], "label": "label", "image": "image"}, indent=2
    )
    temp = label_map.with_name(f".{label_map.name}.{os.getpid()}.tmp")
    temp.write_text(text + "\n", encoding="utf-8")
    os.replace(temp, label_map)
    return WriteSummary(
        summary.count,
        summary.nbytes,
        summary.paths,
        label_map,
        len(skipped),
        tuple(skipped[:3]),
    )
