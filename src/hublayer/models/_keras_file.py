"""Load a ``.keras`` file, saying what is wrong with it when it cannot be read.

Keras answers "File not found" for a file that exists but is empty, is not a zip, or is a
cut-off zip, and a bare ``KeyError`` for a zip without ``config.json``. These checks
name the file and the problem instead.

Example:
    >>> keras_file_problem("no/such/model.keras")
    'no such file'
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

from hublayer.errors import Fix, InvalidModelError

__all__ = ["check_embedded", "check_keras_file", "keras_file_problem", "load_keras_file"]

_NEEDED = ("config.json", "metadata.json")


def keras_file_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a readable ``.keras`` file, or None when it looks sound."""
    file = Path(path)
    if not file.exists():
        return "no such file"
    if not file.is_file():
        return "a folder, not a file"
    size = file.stat().st_size
    if size == 0:
        return "an empty file (0 bytes)"
    if not zipfile.is_zipfile(file):
        with file.open("rb") as handle:
            head = handle.read(4)
        if head[:2] == b"PK":
            return f"a damaged or cut-off zip archive ({size:,} bytes)"
        return f"not a zip archive ({size:,} bytes, starting {head!r}), so not a .keras file"
    try:
        with zipfile.ZipFile(file) as archive:
            names = set(archive.namelist())
            broken = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return f"a damaged zip archive ({error})"
    missing = [n for n in _NEEDED if n not in names]
    if missing:
        return f"a zip archive without {', '.join(missing)}, so not a .keras file"
    if broken is not None:
        return f"a damaged zip archive (member {broken!r} fails its CRC check)"
    return None


def check_keras_file(path: str | os.PathLike[str], *, handle: str | None = None) -> None:
    """Raise :class:`InvalidModelError` naming the problem when ``path`` is not a sound
    ``.keras`` archive."""
    problem = keras_file_problem(path)
    if problem is not None:
        raise _invalid(path, problem, handle)


_MARKER = "/hublayer.json"  # beside each embedded copy, "<layer's assets>/saved_model/"


def check_embedded(path: str | os.PathLike[str], *, handle: str | None = None) -> None:
    """Hash each model a ``KerasLayer`` embeds in the ``.keras`` file at ``path`` (inside
    the zip, nothing extracted) against the content digest its ``hublayer.json`` records.

    Run before Keras loads anything (after the scan, whose refusal comes first): plain
    ``keras.saving.load_model`` checks too (the layer's ``load_assets``), but Keras turns
    that error into a ValueError.

    Raises:
        IntegrityError: an embedded copy changed.
    """
    import hashlib
    import json

    from hublayer.errors import IntegrityError
    from hublayer.handles import digest_records

    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        for marker in (n for n in names if n.endswith(_MARKER)):
            try:
                recorded = json.loads(archive.read(marker)).get("digest")
            except (ValueError, AttributeError):
                recorded = None
            if not isinstance(recorded, str):
                continue  # written before digests, or embedding off
            prefix = marker[: -len(_MARKER)] + "/saved_model/"
            records = []
            for info in archive.infolist():
                if info.filename.startswith(prefix) and not info.is_dir():
                    digest = hashlib.sha256()
                    with archive.open(info) as member:
                        while chunk := member.read(1 << 20):
                            digest.update(chunk)
                    rel = info.filename[len(prefix) :]
                    records.append((rel, info.file_size, digest.hexdigest()))
            actual = digest_records(records)
            if actual != recorded:
                raise IntegrityError(
                    f"Expected the model embedded at {prefix!r} of {os.fspath(path)!r} to "
                    f"have the content digest {recorded} (recorded in the .keras file when "
                    f"it was saved). Received: {actual}: its files were changed inside the "
                    ".keras file. Nothing of it was loaded. Save the model again from a "
                    "trusted copy, or load a .keras file you trust.",
                    handle=handle,
                    path=os.fspath(path),
                    expected=recorded,
                    received=actual,
                    pinned_by="recorded in the .keras file when it was saved",
                )


def load_keras_file(path: str | os.PathLike[str], *, handle: str | None = None) -> Any:
    """``keras.saving.load_model(path)``, after checking that the file is a sound
    ``.keras`` archive.

    Raises:
        InvalidModelError: the file is missing, empty, not a zip, or damaged (naming it
            and the problem).
    """
    check_keras_file(path, handle=handle)
    check_embedded(path, handle=handle)
    import keras

    try:
        return keras.saving.load_model(path)
    except (zipfile.BadZipFile, KeyError, EOFError) as error:
        problem = f"a .keras archive Keras cannot read ({type(error).__name__}: {error})"
        raise _invalid(path, problem, handle) from None


def _invalid(path: str | os.PathLike[str], problem: str, handle: str | None) -> InvalidModelError:
    return InvalidModelError(
        f"Expected a .keras model file at {os.fspath(path)!r}. Received: {problem}.",
        handle=handle,
        path=os.fspath(path),
        fix=Fix(
            "Save the model again (model.save(path)), or pass the path of a sound copy.",
            "Save the model again, or pass the path of a sound copy.",
        ),
    )
