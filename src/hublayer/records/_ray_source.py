"""The Ray Data ``Datasource`` over :mod:`._ray_read` (imports Ray; loaded lazily).

Read tasks hold only plain data (:class:`Piece`, :class:`Column`) and call
:func:`read_piece`; they import neither TensorFlow nor Keras.

Example:
    >>> source = TFRecordSource(paths, columns)  # doctest: +SKIP
    >>> ray.data.read_datasource(source).count()  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

from ray.data.block import BlockAccessor, BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from hublayer.records._framing import OnError
from hublayer.records._ray_read import Column, Piece, PieceCounts, pieces_of, read_piece
from hublayer.records._ray_skips import SkippedRecords

__all__ = ["TFRecordSource"]

_MIN_PIECE = 16 << 20  # a byte range is never smaller than this
_MAX_PIECE = 256 << 20  # nor larger


def _read(
    piece: Piece,
    columns: tuple[Column, ...],
    on_error: OnError,
    raw_column: str | None,
    file_column: str | None,
    checks: tuple[Column, ...],
    skipped: SkippedRecords | None,
) -> Iterable[Any]:
    counts = PieceCounts()
    for batch in read_piece(
        piece,
        columns,
        on_error=on_error,
        raw_column=raw_column,
        file_column=file_column,
        checks=checks,
        counts=counts,
    ):
        yield BlockAccessor.batch_to_block(batch)
    if skipped is not None:  # before the task ends, so the driver sees it by then
        skipped.report(
            piece.path, piece.start, piece.end, piece.last, counts.records, counts.skipped
        )


class TFRecordSource(Datasource):  # type: ignore[misc]
    """TFRecord files of ``tf.train.Example``, read by hublayer's CRC-checking reader."""

    def __init__(
        self,
        paths: Sequence[str],
        columns: tuple[Column, ...],
        *,
        on_error: OnError = "raise",
        raw_column: str | None = None,
        file_column: str | None = None,
        checks: tuple[Column, ...] = (),
        skipped: SkippedRecords | None = None,
    ) -> None:
        super().__init__()
        self.paths = list(paths)
        self.columns = columns
        self.on_error = on_error
        self.raw_column = raw_column
        self.file_column = file_column
        self.checks = checks
        self.skipped = skipped
        self._bytes = sum(os.path.getsize(p) for p in self.paths)

    def get_name(self) -> str:
        return "HublayerTFRecord"

    def estimate_inmemory_data_size(self) -> int | None:
        return self._bytes

    def pieces(self, parallelism: int) -> list[Piece]:
        """The read pieces for a requested parallelism (large plain files are cut)."""
        wanted = max(int(parallelism), 1)
        target = min(max(math.ceil(self._bytes / wanted), _MIN_PIECE), _MAX_PIECE)
        return pieces_of(self.paths, target_bytes=target)

    def get_read_tasks(
        self,
        parallelism: int,
        per_task_row_limit: int | None = None,
        data_context: Any = None,
    ) -> list[ReadTask]:
        tasks = []
        for piece in self.pieces(parallelism):
            metadata = BlockMetadata(
                num_rows=piece.rows,
                size_bytes=piece.size,
                exec_stats=None,
                input_files=(piece.path,),
            )
            read = functools.partial(
                _read,
                piece,
                self.columns,
                self.on_error,
                self.raw_column,
                self.file_column,
                self.checks,
                self.skipped,
            )
            tasks.append(ReadTask(read, metadata, per_task_row_limit=per_task_row_limit))
        return tasks
