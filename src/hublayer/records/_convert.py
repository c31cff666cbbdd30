"""Turn CSV and Parquet files, and numpy arrays, into TFRecord shards.

Every converter writes through :class:`Writer` (shards written whole, then renamed) and
returns a :class:`WriteSummary`. Image folders are in :mod:`._folders`.
"""

from __future__ import annotations

import csv
import glob
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hublayer import config
from hublayer.errors import Fix, OutputExistsError, SchemaError
from hublayer.records._example import encode_example
from hublayer.records._writer import Writer, shard_paths

__all__ = [
    "WriteSummary",
    "claim_outputs",
    "convert_csv",
    "convert_parquet",
    "existing_outputs",
    "write_all",
    "write_arrays",
]


@dataclass(frozen=True)
class WriteSummary:
    """What a converter wrote.

    Attributes:
        count: examples written.
        nbytes: bytes on disk, all shards together.
        paths: the shards.
        label_map: the label map JSON (image folders only).
        skipped: inputs left out (files that are not readable images).
        skipped_examples: the first ten of them, each with the reason.
        classes: the class names the labels index (image folders only).
    """

    count: int
    nbytes: int
    paths: tuple[Path, ...]
    label_map: Path | None = None
    skipped: int = 0
    skipped_examples: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = self.paths[0].parent if self.paths else "."
        text = (
            f"Wrote {self.count:,} examples, {self.nbytes / 1e6:,.1f} MB, in "
            f"{len(self.paths)} shard(s) to {where}"
        )
        if self.label_map is not None:
            text += f"; label map: {self.label_map}"
            if self.classes:
                text += f" ({len(self.classes)} classes: {', '.join(self.classes[:10])}"
                text += ", ...)" if len(self.classes) > 10 else ")"
        if self.skipped:
            more = self.skipped - len(self.skipped_examples)
            text += (
                f"\nSkipped {self.skipped:,} file(s) that are not readable images: "
                + ", ".join(self.skipped_examples)
                + (f" and {more:,} more" if more > 0 else "")
            )
        return text


def progress_bar(total: int | None, unit: str, enabled: bool | None, desc: str) -> Any:
    if not config.progress(enabled):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True, leave=False)


def existing_outputs(out: str | os.PathLike[str]) -> list[Path]:
    """The files a converter writing to ``out`` would replace: the file ``out`` itself,
    and every shard set ``out-NNNNN-of-NNNNN.tfrecord``, whatever its shard count.

    Example:
        >>> existing_outputs("no/such/folder/train")
        []
    """
    target = Path(out)
    found = [target] if target.is_file() else []
    stem, suffix = shard_paths(target, 1)[0].name.split("-00000-of-00001", 1)
    shard = re.compile(re.escape(stem) + r"-\d{5}-of-\d{5}" + re.escape(suffix))
    if target.parent.is_dir():
        found += sorted(
            p
            for p in target.parent.glob(glob.escape(stem) + "-*")
            if shard.fullmatch(p.name) and p.is_file()
        )
    return found


def claim_outputs(out: str | os.PathLike[str], *, overwrite: bool) -> list[Path]:
    """Refuse to write over existing shards unless ``overwrite``; return the old files
    (removed by :func:`write_all` once the new set is complete).

    Raises:
        OutputExistsError: ``out`` already has shards and ``overwrite`` is False.
    """
    old = existing_outputs(out)
    if old and not overwrite:
        shown = ", ".join(p.name for p in old[:4]) + (", ..." if len(old) > 4 else "")
        raise OutputExistsError(
            f"Expected no records at {os.fspath(out)!r} yet. Received: {len(old)} file(s) "
            f"there already ({shown}). Choose another output,",
            path=os.fspath(out),
            fix=Fix(
                "or pass overwrite=True to replace them (the old set is removed once the "
                "new one is written).",
                "or pass --overwrite to replace them (the old set is removed once the new "
                "one is written).",
            ),
        )
    return old


def write_all(
    out: str | os.PathLike[str],
    rows: Iterable[bytes],
    *,
    shards: int | None,
    compression: str,
    total: int | None,
    progress: bool | None,
    desc: str,
    replaces: Iterable[Path] = (),
    keep_empty: bool = True,
) -> WriteSummary:
    """Write ``rows`` through a :class:`Writer`; then remove the files of ``replaces``
    that the new set did not overwrite. With ``keep_empty=False`` nothing is written
    (and nothing replaced) when ``rows`` is empty."""
    bar = progress_bar(total, "ex", progress, desc)
    try:
        with Writer(out, shards=shards, compression=compression) as writer:
            for record in rows:
                writer.write(record)
                if bar is not None:
                    bar.update(1)
            if writer.count == 0 and not keep_empty:
                writer.abort()
                return WriteSummary(0, 0, ())
    finally:
        if bar is not None:
            bar.close()
    for stale in set(replaces) - set(writer.paths):
        stale.unlink(missing_ok=True)
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
