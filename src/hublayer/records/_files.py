"""Turn what a user passes as ``files`` into a sorted list of local paths."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TypeAlias

from hublayer.errors import RecordError

__all__ = ["Files", "expand_files"]

#: One path, glob pattern or folder, or an iterable of them.
Files: TypeAlias = "str | os.PathLike[str] | Iterable[str | os.PathLike[str]]"

_GLOB_CHARS = frozenset("*?[")


def _is_hidden_or_temp(path: Path) -> bool:
    return path.name.startswith(".") or path.name.endswith((".tmp", ".json"))


def expand_files(files: Files) -> list[Path]:
    """Expand paths, glob patterns and folders into a sorted list of files.

    A folder stands for every visible file directly inside it, except ``*.json`` files
    (schemas and label maps kept next to the data) and temp files.

    Args:
        files: a path, a glob pattern (``"data/train-*.tfrecord"``), a folder, or an
            iterable of them.

    Returns:
        The files, each once, in the order given (patterns and folders sorted).

    Raises:
        RecordError: when a path does not exist, a pattern matches nothing, or nothing at
            all was given.

    Example:
        >>> [p.name for p in expand_files("data/train-*.tfrecord")]  # doctest: +SKIP
        ['train-00000-of-00002.tfrecord', 'train-00001-of-00002.tfrecord']
    """
    items = [files] if isinstance(files, str | os.PathLike) else list(files)
    found: list[Path] = []
    for item in items:
        text = os.fspath(item)
        if _GLOB_CHARS & set(text):
            matches = sorted(Path(m) for m in glob.glob(text) if Path(m).is_file())
            if not matches:
                raise RecordError(
                    f"Expected the pattern {text!r} to match at least one file. "
                    "Received: no match. Check the folder and the pattern.",
                    file=text,
                )
            found.extend(matches)
            continue
        path = Path(text)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and not _is_hidden_or_temp(p))
            if not inside:
                raise RecordError(
                    f"Expected the folder {text!r} to hold TFRecord files. "
                    "Received: an empty folder. Pass the files or a pattern instead.",
                    file=text,
                )
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise RecordError(
                f"Expected a TFRecord file at {text!r}. Received: no such file or folder. "
                "Check the path (and the working directory).",
                file=text,
            )
    if not found:
        raise RecordError(
            "Expected at least one TFRecord file. Received: files=[]. "
            "Pass a path, a glob pattern or a folder."
        )
    return list(dict.fromkeys(found))
