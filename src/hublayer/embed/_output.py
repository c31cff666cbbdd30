"""Output shards of ``embed``: one per input shard, named after it, written atomically.

::

    inputs                                   out_dir (format="tfrecord")
    data/train-00000-of-00002.tfrecord  ──▶  out/train-00000-of-00002.tfrecord
    data/train-00001-of-00002.tfrecord.gz ─▶ out/train-00001-of-00002.tfrecord
                                             (format="parquet": ...-00002.parquet)

Each output is written to a temp name in ``out_dir`` and renamed when its input shard is
done, so an output that exists is complete, and a run started again skips it. Rows hold
the kept features as they were, plus ``embedding`` (a float list).

Example:
    >>> with ShardOutput(Path("out/a.tfrecord"), "tfrecord") as out:  # doctest: +SKIP
    ...     out.write({"label": np.array([1, 2])}, np.zeros((2, 8), np.float32))
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np

from hublayer import records
from hublayer.errors import SchemaError

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

    def commit(self) -> Path:
        """Finish the file and rename it to its final name."""
        if self._done:
            return self.path
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
        os.replace(self._temp, self.path)
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
