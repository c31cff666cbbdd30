"""Turn CSV and Parquet files, and numpy arrays, into TFRecord shards.

Every converter writes through :mod:`._output_set` (shards written whole, then renamed)
and returns a :class:`WriteSummary`. Image folders are in :mod:`._folders`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from hublayer.errors import Fix, SchemaError
from hublayer.records._example import encode_example
from hublayer.records._output_set import WriteSummary, claim_outputs, write_all

__all__ = ["WriteSummary", "convert_csv", "convert_parquet", "write_arrays"]


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
    overwrite: bool = False,
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
        overwrite: replace records already at ``out`` (removed once the new ones are
            written); otherwise they are an error.
        progress: draw a progress bar.

    Returns:
        A :class:`WriteSummary`.

    Raises:
        FileNotFoundError: no file at ``path``.
        OutputExistsError: ``out`` has records and ``overwrite`` is False.
        ValueError: the file has no header row; SchemaError (a ValueError) when a row
            has the wrong number of cells.

    Example:
        >>> convert_csv("iris.csv", "data/iris.tfrecord")  # doctest: +SKIP
    """
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise FileNotFoundError(f"Expected a CSV file at {source!r}. Received: no such file.")
    old = claim_outputs(out, overwrite=overwrite)

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
            raise SchemaError(
                f"Expected {len(header)} cells per row in {source!r}, as in its header. "
                f"Received: {len(row)} on line {line}.",
                feature=None,
                fix=Fix(
                    f"Fix the row, or pass the file's separator as delimiter= (now {delimiter!r}).",
                    f"Fix the row, or pass the file's separator with --delimiter (now "
                    f"{delimiter!r}).",
                ),
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
        replaces=old,
    )


def convert_parquet(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    shards: int | None = None,
    compression: str = "",
    overwrite: bool = False,
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
        overwrite: replace records already at ``out`` (removed once the new ones are
            written); otherwise they are an error.
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
    old = claim_outputs(out, overwrite=overwrite)
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
        replaces=old,
    )


def write_arrays(
    out: str | os.PathLike[str],
    arrays: Mapping[str, Any],
    *,
    shards: int | None = None,
    compression: str = "",
    overwrite: bool = False,
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
        overwrite: replace records already at ``out`` (removed once the new ones are
            written); otherwise they are an error.
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
    old = claim_outputs(out, overwrite=overwrite)

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
        replaces=old,
    )
