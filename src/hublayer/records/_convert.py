"""Turn CSV and Parquet files, and numpy arrays, into TFRecord shards.

Every converter writes through :class:`Writer` (shards written whole, then renamed) and
returns a :class:`WriteSummary`. Image folders are in :mod:`._folders`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hublayer import config
from hublayer.records._example import encode_example
from hublayer.records._writer import Writer

__all__ = ["WriteSummary", "convert_csv", "convert_parquet", "write_arrays", "write_all"]


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


def progress_bar(total: int | None, unit: str, enabled: bool | None, desc: str) -> Any:
    if not config.progress(enabled):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True, leave=False)


def write_all(
    out: str | os.PathLike[str],
    rows: Iterable[bytes],
    *,
    shards: int | None,
    compression: str,
    total: int | None,
    progress: bool | None,
    desc: str,
) -> WriteSummary:
    bar = progress_bar(total, "ex", progress, desc)
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

    return write_all(
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

    return write_all(
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

    return write_all(
        out,
        rows(),
        shards=shards,
        compression=compression,
        total=count,
        progress=progress,
        desc="examples",
    )
