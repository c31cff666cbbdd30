"""The shard set a converter writes: refuse or replace old shards, write, summarize.

Every converter (CSV, Parquet, arrays, image folders) claims its output with
:func:`claim_outputs`, writes through :func:`write_all` (a :class:`Writer`: shards written
whole, then renamed; the old set removed only once the new one is complete), and returns
the :class:`WriteSummary`.

Example:
    >>> import tempfile
    >>> out = tempfile.mkdtemp() + "/train"
    >>> claim_outputs(out, overwrite=False)
    []
    >>> print(write_all(out, [b"x", b"y"], shards=1, compression="", total=2, progress=False,
    ...                 desc="demo"))  # doctest: +ELLIPSIS
    Wrote 2 examples, 0.0 MB, in 1 shard(s) to /tmp/...
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hublayer import config
from hublayer.errors import Fix, OutputExistsError
from hublayer.records._writer import Writer, shard_paths

__all__ = ["WriteSummary", "claim_outputs", "existing_outputs", "progress_bar", "write_all"]


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
