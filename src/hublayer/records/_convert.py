"""Turn image folders, CSV and Parquet files, and numpy arrays into TFRecord shards.

Every converter writes through :class:`Writer` (shards written whole, then renamed) and
returns a :class:`WriteSummary`. An image folder looks like this::

    DIR/                          OUT-00000-of-00008.tfrecord ... (features below)
    ├── cat/  a.jpg b.png ...     OUT.label_map.json  {"classes": ["cat", "dog"],
    └── dog/  c.jpg ...                                "label": "label", "image": "image"}

    image     bytes   the file's bytes (JPEG, PNG, GIF) or, re-encoded, a JPEG
    label     int64   the index of the class folder, in sorted order
    filename  bytes   the path below DIR
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hublayer import config
from hublayer.records._example import encode_example
from hublayer.records._framing import Writer
from hublayer.records._sniff import sniff_image

__all__ = ["WriteSummary", "convert_csv", "convert_images", "convert_parquet", "write_arrays"]

_KEEP_FORMATS = ("jpeg", "png", "gif")  # formats tf.io.decode_image reads as they are


@dataclass(frozen=True)
class WriteSummary:
    """What a converter wrote.

    Attributes:
        count: examples written.
        nbytes: bytes on disk, all shards together.
        paths: the shards.
        label_map: the label map JSON (image folders only).
        skipped: inputs left out (files that are not images).
        skipped_examples: the first few of them.
    """

    count: int
    nbytes: int
    paths: tuple[Path, ...]
    label_map: Path | None = None
    skipped: int = 0
    skipped_examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = self.paths[0].parent if self.paths else "."
        text = (
            f"Wrote {self.count:,} examples, {self.nbytes / 1e6:,.1f} MB, in "
            f"{len(self.paths)} shard(s) to {where}"
        )
        if self.label_map is not None:
            text += f"; label map: {self.label_map}"
        if self.skipped:
            text += f"; skipped {self.skipped:,} (e.g. {', '.join(self.skipped_examples)})"
        return text


def _progress(total: int | None, unit: str, enabled: bool | None, desc: str) -> Any:
    if not config.progress(enabled):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True, leave=False)


def _write_all(
    out: str | os.PathLike[str],
    rows: Iterable[bytes],
    *,
    shards: int | None,
    compression: str,
    total: int | None,
    progress: bool | None,
    desc: str,
) -> WriteSummary:
    bar = _progress(total, "ex", progress, desc)
    try:
        with Writer(out, shards=shards, compression=compression) as writer:
            for record in rows:
                writer.write(record)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    size = sum(p.stat().st_size for p in writer.paths)
    return WriteSummary(writer.count, size, writer.paths)


# -- image folders --------------------------------------------------------------------------


def _reencode(data: bytes, max_size: int | None, quality: int) -> bytes | None:
    """The image as a JPEG no larger than ``max_size``, or None when PIL cannot read it."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as error:  # pragma: no cover - pillow is in the test extras
        raise ImportError(
            "Re-encoding images needs Pillow: pip install pillow. Or convert without "
            "max_size, keeping JPEG, PNG and GIF files as they are."
        ) from error
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

    summary = _write_all(
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


# -- tables -------------------------------------------------------------------------------


def _parse_cell(text: str, kind: str) -> Any:
    if kind == "int64":
        return int(text)
    if kind == "float":
        return float(text)
    return text


def _column_kind(values: Iterable[str], kind: str = "int64") -> str:
    """The narrowest of int64, float, bytes that holds ``values`` and ``kind`` so far."""
    for value in values:
        if value == "":
            continue
        if kind == "int64":
            try:
                int(value)
                continue
            except ValueError:
                kind = "float"
        if kind == "float":
            try:
                float(value)
                continue
            except ValueError:
                return "bytes"
    return kind


def convert_csv(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    shards: int | None = None,
    delimiter: str = ",",
    compression: str = "",
    progress: bool | None = None,
) -> WriteSummary:
    """Write each row of a CSV file (with a header row) as an Example.

    A column whose every value is an int becomes an int64 feature, else a float one if
    every value parses as a float, else a bytes feature. Empty cells are left out, so
    the schema shows them as missing.

    Args:
        path: the CSV file.
        out: the output file, or the shard name prefix when ``shards`` is given.
        shards: the number of shards, or None for one file at ``out``.
        delimiter: the field separator.
        compression: ``""``, ``"GZIP"`` or ``"ZLIB"``.
        progress: draw a progress bar.

    Returns:
        A :class:`WriteSummary`.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file has no header row, or a row has the wrong number of cells.

    Example:
        >>> convert_csv("iris.csv", "data/iris.tfrecord")  # doctest: +SKIP
    """
    source = os.fspath(path)

    def table() -> Iterator[list[str]]:
        with open(source, newline="", encoding="utf-8") as handle:
            yield from csv.reader(handle, delimiter=delimiter)

    lines = table()
    header = next(lines, None)
    if not header:
        raise ValueError(f"Expected a header row in {source!r}. Received: an empty file.")
    kinds = ["int64"] * len(header)  # first pass: the kind of every column
    count = 0
    for line, row in enumerate(lines, start=2):
        if len(row) != len(header):
            raise ValueError(
                f"Expected {len(header)} cells per row in {source!r}. Received: {len(row)} "
                f"on line {line}. Fix the row, or pass delimiter=."
            )
        for column, value in enumerate(row):
            if value != "" and kinds[column] != "bytes":
                kinds[column] = _column_kind([value], kinds[column])
        count += 1

    def rows() -> Iterator[bytes]:  # second pass: write
        lines = table()
        next(lines)
        for row in lines:
            yield encode_example(
                {
                    name: _parse_cell(value, kind)
                    for name, value, kind in zip(header, row, kinds, strict=True)
                    if value != ""
                }
            )

    return _write_all(
        out,
        rows(),
        shards=shards,
        compression=compression,
        total=count,
        progress=progress,
        desc="rows",
    )


def convert_parquet(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    shards: int | None = None,
    compression: str = "",
    progress: bool | None = None,
) -> WriteSummary:
    """Write each row of a Parquet file as an Example (needs ``pyarrow``).

    Integer and boolean columns become int64 features, floating ones float, strings and
    binary bytes; list columns keep their lists. Nulls are left out.

    Args:
        path: the Parquet file.
        out: the output file, or the shard name prefix when ``shards`` is given.
        shards: the number of shards, or None for one file at ``out``.
        compression: ``""``, ``"GZIP"`` or ``"ZLIB"``.
        progress: draw a progress bar.

    Returns:
        A :class:`WriteSummary`.

    Raises:
        ImportError: pyarrow is not installed.
        ValueError: a column of a type an Example cannot hold (naming the column).
    """
    try:
        import pyarrow.parquet as pq
    except ImportError as error:  # pragma: no cover - pyarrow is in the parquet extra
        raise ImportError(
            "Reading Parquet needs pyarrow: pip install 'hublayer[parquet]'."
        ) from error
    table = pq.ParquetFile(path)

    def rows() -> Iterator[bytes]:
        for batch in table.iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                yield encode_example({k: v for k, v in row.items() if v is not None})

    return _write_all(
        out,
        rows(),
        shards=shards,
        compression=compression,
        total=table.metadata.num_rows,
        progress=progress,
        desc="rows",
    )


def write_arrays(
    out: str | os.PathLike[str],
    arrays: Mapping[str, Any],
    *,
    shards: int | None = None,
    compression: str = "",
    progress: bool | None = None,
) -> WriteSummary:
    """Write numpy arrays as Examples: row ``i`` of every array makes example ``i``.

    Args:
        out: the output file, or the shard name prefix when ``shards`` is given.
        arrays: feature name to an array whose first dimension counts the examples;
            each row is flattened (C order). Floats become float features, ints and
            bools int64, strings and bytes bytes.
        shards: the number of shards, or None for one file at ``out``.
        compression: ``""``, ``"GZIP"`` or ``"ZLIB"``.
        progress: draw a progress bar.

    Returns:
        A :class:`WriteSummary`.

    Raises:
        ValueError: arrays of different lengths, a 0-d array, or an unsupported dtype.

    Example:
        >>> x = np.random.rand(100, 10).astype(np.float32)
        >>> y = np.arange(100) % 2
        >>> write_arrays("data/train", {"x": x, "label": y}, shards=2)  # doctest: +SKIP
    """
    columns = {name: np.asarray(value) for name, value in arrays.items()}
    lengths = {name: (a.shape[0] if a.ndim else None) for name, a in columns.items()}
    if not columns or None in lengths.values() or len(set(lengths.values())) != 1:
        raise ValueError(
            "Expected arrays with the same first dimension (one row per example). "
            f"Received: { ({k: columns[k].shape for k in columns}) }."
        )
    count = next(iter(lengths.values())) or 0

    def rows() -> Iterator[bytes]:
        for i in range(count):
            yield encode_example({name: column[i] for name, column in columns.items()})

    return _write_all(
        out,
        rows(),
        shards=shards,
        compression=compression,
        total=count,
        progress=progress,
        desc="examples",
    )
