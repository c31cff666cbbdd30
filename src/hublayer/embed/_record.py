"""The output folder's record, ``.hublayer-embed.json``: what made it, and each shard's counts.

::

    {"model": ..., "model_files": ..., "signature": ..., "keep": [...], "format": ...,
     "input_range": null, "image": null,              <- the identity: what the rows depend on
     "shards": {"train-00000-of-00002.tfrecord":      <- one entry per finished shard
                {"input": "data/train-00000-of-00002.tfrecord",
                 "records": 12, "skipped": 1, "rows": 11}}}

A rerun keeps a folder only when its identity is unchanged. A shard's entry is written
just before its file is moved into place (so an entry may lack its file, never the
reverse, except for folders written before entries existed); a finished shard is kept
only when its file holds the rows its entry says, and is never replaced.

Example:
    >>> record = EmbedRecord.claim(Path("out"), identity)  # doctest: +SKIP
    >>> target = Path("out/a.tfrecord")
    >>> record.add(target, "data/a.tfrecord", records=12, skipped=1, rows=11)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hublayer import records
from hublayer.errors import Fix, OutputExistsError

__all__ = ["MANIFEST", "EmbedRecord", "output_rows"]

MANIFEST = ".hublayer-embed.json"
_SHARDS = "shards"
_ADDED_LATER = ("input_range", "image")  # identity keys older records lack (None then)


def output_rows(path: Path) -> int:
    """Rows in a finished output shard (TFRecord records, or Parquet rows)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    with records.Reader(path, verify=False) as reader:
        return sum(1 for _ in reader)


class EmbedRecord:
    """The record of one output folder (driver only)."""

    def __init__(self, out: Path, identity: dict[str, Any], shards: dict[str, Any]) -> None:
        self.out = out
        self.identity = identity
        self.shards = shards
        self.legacy = False  # the folder was written before shard entries existed

    @classmethod
    def claim(cls, out: Path, identity: dict[str, Any]) -> EmbedRecord:
        """Record ``identity`` in ``out``, or refuse a folder made with another one.

        Raises:
            OutputExistsError: ``out`` holds outputs of another model or other settings.
        """
        path = out / MANIFEST
        if not path.exists():
            record = cls(out, identity, {})
            record._write()
            return record
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = None
        changed = sorted(
            k
            for k in identity
            if not isinstance(before, dict)
            or before.get(k, None if k in _ADDED_LATER else before) != identity[k]
        )
        if changed or not isinstance(before, dict):
            raise OutputExistsError(
                f"Expected {str(out)!r} to hold embeddings of this model and these settings, "
                "so that complete shards can be kept. Received: a folder written with another "
                f"{', '.join(changed) or 'manifest'} (see {MANIFEST}).",
                path=str(out),
                fix=Fix(
                    "Pass another out_dir, or delete that folder to embed again.",
                    "Pass another --out, or delete that folder to embed again.",
                ),
            )
        shards = before.get(_SHARDS)
        record = cls(out, identity, dict(shards) if isinstance(shards, dict) else {})
        record.legacy = not isinstance(shards, dict)
        if record.legacy or any(k not in before for k in _ADDED_LATER):
            record._write()
        return record

    def finished(self, target: Path, source: str) -> bool:
        """Whether ``target`` is a finished shard to keep (checked against its entry).

        Raises:
            OutputExistsError: the file holds another number of rows than its entry says.
        """
        if not target.exists():
            return False
        entry = self.shards.get(target.name)
        if entry is None:
            if self.legacy:  # written before entries existed: kept, and recorded now
                rows = output_rows(target)
                self.add(target, source, records=None, skipped=None, rows=rows)
                return True
            raise self._unrecorded(target)
        rows = output_rows(target)
        if rows != entry.get("rows"):
            raise OutputExistsError(
                f"Expected the finished output shard {target.name!r} to hold "
                f"{entry.get('rows')} rows, as {MANIFEST} records. Received: {rows} rows. "
                "It was changed after it was written; it is not replaced.",
                path=str(target),
                fix=Fix(
                    "Delete that file to embed its shard again.",
                    "Delete that file to embed its shard again.",
                ),
            )
        return True

    def _unrecorded(self, target: Path) -> OutputExistsError:
        return OutputExistsError(
            f"Expected every output shard in {str(self.out)!r} to be recorded in "
            f"{MANIFEST}. Received: {target.name!r}, which is not, so its rows cannot be "
            "checked; it is not replaced.",
            path=str(target),
            fix=Fix(
                "Delete that file to embed its shard again.",
                "Delete that file to embed its shard again.",
            ),
        )

    def add(
        self,
        target: Path,
        source: str,
        *,
        records: int | None,
        skipped: int | None,
        rows: int,
    ) -> None:
        """Record a shard's counts (before its file is moved into place)."""
        self.shards[target.name] = {
            "input": source,
            "records": records,
            "skipped": skipped,
            "rows": rows,
        }
        self._write()

    def _write(self) -> None:
        data = {**self.identity, _SHARDS: self.shards}
        temp = self.out / f".{MANIFEST}.{os.getpid()}.tmp"
        temp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(temp, self.out / MANIFEST)
