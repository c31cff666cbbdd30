"""Turn a folder of class subfolders of images into TFRecord shards and a label map.

::

    DIR/                          OUT-00000-of-00008.tfrecord ... (features below)
    ├── cat/  a.jpg b.png ...     OUT.label_map.json  {"classes": ["cat", "dog"],
    └── dog/  c.jpg ...                                "label": "label", "image": "image"}

    image     bytes   the file's bytes (JPEG, PNG, GIF) or, re-encoded, a JPEG
    label     int64   the index of the class in the label map (sorted folder names,
                      or the classes given, shared by every split)
    filename  bytes   the path below DIR

Every image is decoded before it is written: files that are empty, truncated or not
images are skipped and named in the summary (or, with ``on_error="raise"``, refused).
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from hublayer.errors import Fix, ImageDecodeError
from hublayer.records._example import encode_example
from hublayer.records._label_map import LabelMap, check_classes, write_label_map
from hublayer.records._output_set import WriteSummary, claim_outputs, write_all
from hublayer.records._sniff import sniff_image

__all__ = ["convert_image_splits", "convert_images", "image_problem"]

_KEEP_FORMATS = ("jpeg", "png", "gif")  # formats tf.io.decode_image reads as they are

#: A list of class names, or the path of a label map JSON file to take them from.
ClassesLike = Sequence[str] | str | os.PathLike[str] | None


def image_problem(data: bytes) -> str | None:
    """Why ``data`` cannot be decoded as an image, or None when it decodes.

    The whole image is decoded (JPEGs at 1/8 scale, which still reads every byte), so a
    truncated or corrupt file is caught here rather than by TensorFlow mid-training.

    Example:
        >>> image_problem(b"")
        'empty file'
        >>> image_problem(b"hello")
        'not an image'
    """
    from PIL import Image, UnidentifiedImageError  # a dependency; imported when used

    if not data:
        return "empty file"
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.format == "JPEG":
                opened.draft(opened.mode, (max(1, opened.width // 8), max(1, opened.height // 8)))
            opened.load()
    except UnidentifiedImageError:
        return "not an image"
    except (OSError, ValueError, SyntaxError) as error:  # PIL raises SyntaxError for some
        return f"cannot be decoded: {error}"
    return None


def _reencode(data: bytes, max_size: int | None, quality: int) -> bytes | str:
    """The image as a JPEG no larger than ``max_size``, or why PIL cannot read it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB") if opened.mode not in ("RGB", "L") else opened.copy()
        if max_size is not None:
            image.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        return buffer.getvalue()
    except UnidentifiedImageError:
        return "empty file" if not data else "not an image"
    except (OSError, ValueError, SyntaxError) as error:
        return f"cannot be decoded: {error}"


def _image_bytes(path: Path, max_size: int | None, quality: int) -> bytes | str:
    """The bytes to store for ``path``, or why it cannot be stored."""
    data = path.read_bytes()
    info = sniff_image(data)
    fits = max_size is None or (info is not None and max(info.height, info.width) <= max_size)
    if info is not None and info.format in _KEEP_FORMATS and fits:
        return image_problem(data) or data
    return _reencode(data, max_size, quality)


def _folder_names(root: Path) -> list[str]:
    if not root.is_dir():
        raise FileNotFoundError(
            f"Expected a folder of class subfolders at {str(root)!r}. Received: "
            f"{'a file' if root.exists() else 'no such folder'}."
        )
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise ValueError(
            f"Expected class subfolders in {str(root)!r} (DIR/cat/*.jpg, DIR/dog/*.jpg). "
            "Received: none. Put the images of each class in a folder named after it."
        )
    return names


def _resolve_classes(classes: ClassesLike, roots: Sequence[Path]) -> tuple[str, ...]:
    """The class names for ``roots``: given, read from a label map, or every folder name."""
    seen = {root: _folder_names(root) for root in roots}
    if classes is None:
        return tuple(sorted({name for names in seen.values() for name in names}))
    if isinstance(classes, str | os.PathLike):
        names = LabelMap.load(classes).classes
        where = f"the label map {os.fspath(classes)!r}"
    else:
        names = check_classes(list(classes), where="classes")
        where = f"classes={list(names)}"
    for root, folders in seen.items():
        extra = sorted(set(folders) - set(names))
        if extra:
            raise ValueError(
                f"Expected the class folders of {str(root)!r} to be among {where}. Received: "
                f"folders {extra} that are not. Add them to the classes, or move them out."
            )
    return names


def convert_images(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    classes: ClassesLike = None,
    shards: int = 8,
    max_size: int | None = None,
    quality: int = 90,
    shuffle: bool = True,
    seed: int = 0,
    compression: str = "",
    on_error: Literal["skip", "raise"] = "skip",
    overwrite: bool = False,
    progress: bool | None = None,
) -> WriteSummary:
    """Write an image folder with one subfolder per class as shards, plus a label map.

    Every image is decoded before it is written, so a truncated or corrupt file is
    found here, named, and skipped (or refused with ``on_error="raise"``).

    Args:
        src: the folder; each subfolder is a class.
        out: the shard name prefix: ``data/train`` gives
            ``data/train-00000-of-00008.tfrecord`` and ``data/train.label_map.json``.
        classes: the class names, in label order, shared by every split: a list, or
            the path of a label map JSON to reuse (``data/train.label_map.json``).
            None takes the subfolder names in sorted order. A class without a folder
            keeps its index; a folder that is not a class is an error.
        shards: the number of shards.
        max_size: None keeps each file's bytes as they are (JPEG, PNG and GIF; other
            formats are re-encoded as JPEG); a number re-encodes images whose longer
            side is larger to a JPEG of at most that many pixels.
        quality: JPEG quality when re-encoding.
        shuffle: mix the files (reproducibly, with ``seed``) so each shard holds every
            class.
        seed: the shuffle seed.
        compression: ``""``, ``"GZIP"`` or ``"ZLIB"``.
        on_error: ``"skip"`` files that are not readable images (listed in the
            summary), or ``"raise"`` listing them, writing nothing.
        overwrite: replace shards already at ``out`` (the old set is removed once the new
            one is complete); otherwise existing shards are an error.
        progress: draw a progress bar (default: ``$HUBLAYER_PROGRESS``, else on a TTY).

    Returns:
        A :class:`WriteSummary`; files skipped are counted and named with the reason.

    Raises:
        FileNotFoundError: ``src`` is not a folder.
        FileExistsError: ``out`` already has shards and ``overwrite`` is False.
        ValueError: no class subfolders, no images at all, a folder outside ``classes``,
            or (``on_error="raise"``) files that are not readable images.

    Example:
        >>> summary = convert_images("flowers/", "data/flowers", shards=4)  # doctest: +SKIP
        >>> print(summary)  # doctest: +SKIP
        Wrote 3,670 examples, 228.1 MB, in 4 shard(s) to data; label map: data/flowers...
    """
    if on_error not in ("skip", "raise"):
        raise ValueError(
            f'Expected on_error to be "skip" or "raise". Received: on_error={on_error!r}.'
        )
    root = Path(src)
    names = _resolve_classes(classes, [root])
    old = claim_outputs(out, overwrite=overwrite)
    index = {name: i for i, name in enumerate(names)}
    items = [
        (path, index[folder.name])
        for folder in sorted(p for p in root.iterdir() if p.name in index and p.is_dir())
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    ]
    if shuffle:
        random.Random(seed).shuffle(items)
    skipped: list[str] = []

    def encoded() -> Iterator[tuple[str, int, bytes | str]]:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            results = pool.map(lambda item: _image_bytes(item[0], max_size, quality), items)
            for (path, label), data in zip(items, results, strict=True):
                yield path.relative_to(root).as_posix(), label, data

    if on_error == "raise":  # check every file first, so nothing is written when one is bad
        checked = list(encoded())
        bad = [f"{name} ({data})" for name, _, data in checked if isinstance(data, str)]
        if bad:
            shown = ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
            raise ImageDecodeError(
                f"Expected readable images in {str(root)!r}. Received: {len(bad)} file(s) "
                f"that are not: {shown}. Nothing was written.",
                files=bad,
                fix=Fix(
                    'Remove or fix them, or pass on_error="skip" to leave them out.',
                    "Remove or fix them, or pass --on-error skip to leave them out.",
                ),
            )

    def rows() -> Iterator[bytes]:
        for name, label, data in checked if on_error == "raise" else encoded():
            if isinstance(data, str):
                skipped.append(f"{name} ({data})")
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
        replaces=old,
        keep_empty=False,
    )
    if summary.count == 0:
        raise ValueError(
            f"Expected images in the class folders of {str(root)!r}. Received: "
            f"{len(items)} file(s), none of them a readable image"
            + (f" ({', '.join(skipped[:3])})." if skipped else ".")
        )
    label_map = write_label_map(out, names)
    return WriteSummary(
        summary.count,
        summary.nbytes,
        summary.paths,
        label_map,
        len(skipped),
        tuple(skipped[:10]),
        classes=names,
    )


def convert_image_splits(
    splits: Mapping[str | os.PathLike[str], str | os.PathLike[str]],
    *,
    classes: ClassesLike = None,
    **options: object,
) -> list[WriteSummary]:
    """Convert several image folders (train, validation, test) with one shared label map.

    The classes are the union of every split's subfolders (or ``classes``), so a split
    that lacks a class still numbers the others as the rest do. Every source and output
    is checked before anything is written.

    Args:
        splits: source folder to output prefix, e.g. ``{"photos/train": "data/train"}``.
        classes: as for :func:`convert_images`.
        **options: the other arguments of :func:`convert_images`.

    Returns:
        One :class:`WriteSummary` per split, in order.

    Example:
        >>> convert_image_splits(  # doctest: +SKIP
        ...     {"photos/train": "data/train", "photos/test": "data/test"}, shards=4)
    """
    if not splits:
        raise ValueError("Expected at least one split (source folder -> output). Received: none.")
    outs = [os.path.abspath(os.fspath(out)) for out in splits.values()]
    twice = sorted({out for out in outs if outs.count(out) > 1})
    if twice:
        raise ValueError(
            f"Expected one output per split. Received: {twice} given for several folders. "
            "Give each split its own output prefix."
        )
    names = _resolve_classes(classes, [Path(s) for s in splits])
    overwrite = bool(options.get("overwrite", False))
    for out in splits.values():
        claim_outputs(out, overwrite=overwrite)
    return [
        convert_images(src, out, classes=names, **options)  # type: ignore[arg-type]
        for src, out in splits.items()
    ]
