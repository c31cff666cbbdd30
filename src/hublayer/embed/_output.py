"""Output shards of ``embed``: one per input shard, named after it, written atomically.

::

    inputs                                   out_dir (format="tfrecord")
    data/train-00000-of-00002.tfrecord  ──▶  out/train-00000-of-00002.tfrecord
    data/train-00001-of-00002.tfrecord.gz ─▶ out/train-00001-of-00002.tfrecord
                                             (format="parquet": ...-00002.parquet)

Each output is written to a temp name in ``out_dir`` and moved into place when its input
shard is done and its rows are counted: as many as the input's records less those
skipped, else nothing is written. An output that exists is complete and is never
replaced (the move refuses an existing name); a run started again skips it. Rows hold
the kept features as they were, plus ``embedding`` (a float list).

Example:
    >>> with ShardOutput(Path("out/a.tfrecord"), "tfrecord") as out:  # doctest: +SKIP
    ...     out.write({"label": np.array([1, 2])}, np.zeros((2, 8), np.float32))
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np

from hublayer import records
from hublayer.errors import Fix, OutputExistsError, RecordError, SchemaError

__all__ = ["EMBEDDING", "Format", "ShardOutput", "output_paths"]

Format: TypeAlias = Literal["tfrecord", "parquet"]
EMBEDDING = "embedding"
_INPUT_SUFFIXES = (".gz", ".gzip", ".zlib", ".z", ".tfrecord", ".tfrecords", ".tfrec", ".tfr")
_OUTPUT_SUFFIX = {"tfrecord": ".tfrecord", "parquet": ".parquet"}


def output_paths(inputs: Sequence[str], out_dir: Path, format: Format) -> list[Path]:
    """The output path of each input shard.

    Raises:
        SchemaError: two inputs would write the same output (same name, other folders).
    """
    outputs: list[Path] = []
    seen: dict[Path, str] = {}
    for path in inputs:
        stem = path.rstrip("/").rsplit("/", 1)[-1]  # a local path or a URL
        stripped = True
        while stripped:
            stripped = False
            for suffix in _INPUT_SUFFIXES:
                if stem.lower().endswith(suffix) and len(stem) > len(suffix):
                    stem, stripped = stem[: -len(suffix)], True
        target = out_dir / f"{stem}{_OUTPUT_SUFFIX[format]}"
        if target in seen:
            raise SchemaError(
                f"Expected input shards with distinct names (each names its output). "
                f"Received: {seen[target]!r} and {path!r} both give "
                f"{target.name!r}. Embed them into separate output folders."
            )
        seen[target] = path
        outputs.append(target)
    return outputs


def _move_new(temp: Path, path: Path) -> None:
    """Move ``temp`` to ``path``, which must not exist (FileExistsError if it does)."""
    try:
        os.link(temp, path)  # atomic, and fails on an existing name
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links
        if path.exists():
            raise FileExistsError(str(path)) from None
        os.replace(temp, path)
        return
    temp.unlink()


def _row(kept: Mapping[str, Any], index: int) -> dict[str, Any]:
    return {name: column[index] for name, column in kept.items()}


class ShardOutput:
    """One output shard: rows are written to a temp file that is renamed on :meth:`commit`.

    Leaving the ``with`` block normally commits; an exception removes the temp file, so
    no partial output is ever left under the final name.
    """

    def __init__(self, path: Path, format: Format) -> None:
        self.path = path
        self.format = format
        self.rows = 0
        self._temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        self._writer: Any = None
        self._parquet: Any = None
        self._done = False
        if format == "tfrecord":
            self._writer = records.Writer(self._temp)
            self._writer.__enter__()

    def write(self, kept: Mapping[str, Any], embeddings: np.ndarray) -> None:
        """Write ``len(embeddings)`` rows: ``kept[name][i]`` plus ``embeddings[i]``."""
        embeddings = np.asarray(embeddings, dtype=np.float32).reshape(len(embeddings), -1)
        if self.format == "tfrecord":
            for i in range(len(embeddings)):
                row = _row(kept, i)
                row[EMBEDDING] = embeddings[i]
                self._writer.write(records.encode_example(row))
        else:
            self._write_parquet(kept, embeddings)
        self.rows += len(embeddings)

    def _write_parquet(self, kept: Mapping[str, Any], embeddings: np.ndarray) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays: dict[str, Any] = {}
        for name, column in kept.items():
            values = column.tolist() if isinstance(column, np.ndarray) else list(column)
            arrays[name] = pa.array(
                [v.tolist() if isinstance(v, np.ndarray) else v for v in values]
            )
        flat = pa.array(embeddings.ravel(), type=pa.float32())
        arrays[EMBEDDING] = pa.FixedSizeListArray.from_arrays(flat, embeddings.shape[1])
        table = pa.table(arrays)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self._temp, table.schema)
        self._parquet.write_table(table)

    def commit(
        self,
        expected: int | None = None,
        *,
        source: str = "",
        skipped: int = 0,
        before_move: Callable[[], None] | None = None,
    ) -> Path:
        """Finish the file and move it to its final name.

        Args:
            expected: the rows the shard must hold (its input's records less those
                skipped); None skips the check.
            source: the input shard, for the error.
            skipped: records of the input skipped, for the error.
            before_move: called once the rows are counted, before the file is moved
                (``embed`` records the shard's counts there).

        Raises:
            RecordError: the shard holds another number of rows; nothing is written.
            OutputExistsError: a file already has the final name; it is kept.
        """
        if self._done:
            return self.path
        if expected is not None and self.rows != expected:
            self.abort()
            raise RecordError(
                f"Expected {expected} rows in the output shard {self.path.name!r}: the "
                f"records of {source!r} less {skipped} skipped. Received: {self.rows} rows. "
                "Rows were lost between reading and writing; the shard was not written "
                "(the other shards are kept). Run embed again; report it if it repeats.",
                file=source,
                expected=expected,
                received=self.rows,
                shard=str(self.path),
            )
        self._done = True
        if self.format == "tfrecord":
            self._writer.close()
        else:
            if self._parquet is None:  # an empty input shard: an empty table
                import pyarrow as pa
                import pyarrow.parquet as pq

                pq.write_table(pa.table({EMBEDDING: pa.array([], pa.float32())}), self._temp)
            else:
                self._parquet.close()
        if before_move is not None:
            try:
                before_move()
            except BaseException:
                self._temp.unlink(missing_ok=True)
                raise
        try:
            _move_new(self._temp, self.path)
        except FileExistsError:
            self._temp.unlink(missing_ok=True)
            raise OutputExistsError(
                f"Expected no file at {str(self.path)!r} when its shard was finished. "
                "Received: a file there, written meanwhile by another run; it is kept.",
                path=str(self.path),
                fix=Fix(
                    "Run one embed per out_dir at a time.", "Run one embed per --out at a time."
                ),
            ) from None
        return self.path

    def abort(self) -> None:
        """Drop the temp file; nothing appears under the final name."""
        if self._done:
            return
        self._done = True
        try:
            if self._writer is not None:
                self._writer.abort()
            if self._parquet is not None:
                self._parquet.close()
        finally:
            self._temp.unlink(missing_ok=True)

    def __enter__(self) -> ShardOutput:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        """Commit when the block ends normally, abort on an exception."""
        if exc_type is None:
            self.commit()
        else:
            self.abort()
