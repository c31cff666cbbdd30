"""``records.convert_records``: copy TFRecord files into new shards, changing compression.

A compressed file (GZIP, ZLIB) can only be read from its start, so random access
(:func:`~hublayer.records.index`, :class:`~hublayer.records.Source`) needs an
uncompressed copy; this writes it (or any other compression, or another number of
shards), every record's CRCs checked on the way::

    files (any compression) ──read_records──▶ Writer(out, shards, compression)

Example:
    >>> from hublayer import records
    >>> records.convert_records("data/train-*.tfrecord.gz", "plain/train",  # doctest: +SKIP
    ...                         shards=4)
"""

from __future__ import annotations

import os

from hublayer.records._files import Files, expand_files
from hublayer.records._output_set import WriteSummary, claim_outputs, write_all
from hublayer.records._reader import read_records

__all__ = ["convert_records"]


def convert_records(
    files: Files,
    out: str | os.PathLike[str],
    *,
    shards: int | None = None,
    compression: str = "",
    overwrite: bool = False,
    progress: bool | None = None,
) -> WriteSummary:
    """Copy the records of TFRecord files into new shards at ``out``, as they are.

    Args:
        files: the input files, any compression (detected): paths, globs, folders, URLs.
        out: the output path; with ``shards``, ``out-00000-of-0000N.tfrecord`` and so on.
        shards: the number of output files; None writes one file.
        compression: the output's: ``""`` (none, the default: what random access
            needs), ``"GZIP"`` or ``"ZLIB"``.
        overwrite: replace records already at ``out``.
        progress: draw a progress bar (default: ``$HUBLAYER_PROGRESS``, else on a
            terminal).

    Returns:
        A :class:`WriteSummary`: how many records, bytes and shards were written.

    Raises:
        RecordError: a missing input, or a corrupt record (nothing is written then).
        OutputExistsError: ``out`` has records and ``overwrite`` is False.

    Example:
        >>> records.convert_records("a.tfrecord.gz", "a.tfrecord")  # doctest: +SKIP
    """
    paths = expand_files(files)
    old = claim_outputs(out, overwrite=overwrite)
    return write_all(
        out,
        read_records(paths),
        shards=shards,
        compression=compression,
        total=None,
        progress=progress,
        desc="records",
        replaces=old,
    )
