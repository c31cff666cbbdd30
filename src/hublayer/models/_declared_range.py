"""The input value range a model folder declares, instead of TF Hub's assumed convention.

A SavedModel does not record the value range its image inputs expect. A folder may
declare it beside ``saved_model.pb`` in one of :data:`DECLARATION_FILES`, as
``{"input": {"value_range": [low, high]}}`` (the zoo writes ``hublayer_zoo.json``);
:func:`declare_ranges` then marks the image inputs ``"declared"``, else they keep the
assumed range.

Example:
    >>> import json, pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "hublayer.json").write_text(json.dumps({"input": {"value_range": [-1, 1]}}))
    >>> declared_range(folder)
    (-1.0, 1.0)
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path

from hublayer._specs import RANGE_DECLARED, TensorInfo, check_range

__all__ = ["DECLARATION_FILES", "declare_ranges", "declared_range"]

#: Files beside ``saved_model.pb`` in which a model may declare its input value range, as
#: ``{"input": {"value_range": [low, high]}}`` (the zoo writes ``hublayer_zoo.json``).
DECLARATION_FILES = ("hublayer.json", "hublayer_zoo.json")
_log = logging.getLogger("hublayer.models")


def declare_ranges(
    specs: tuple[TensorInfo, ...], folder: str | os.PathLike[str] | None
) -> tuple[TensorInfo, ...]:
    """``specs`` with the range ``folder`` declares set on each image input, if it does.

    Example:
        >>> import tempfile
        >>> from hublayer._specs import RANGE_ASSUMED
        >>> spec = TensorInfo("x", "float32", (None, 8, 8, 3), (0.0, 1.0), RANGE_ASSUMED)
        >>> declare_ranges((spec,), tempfile.mkdtemp())[0].range_source
        'assumed: TF Hub convention'
    """
    declared = declared_range(folder) if folder is not None else None
    if declared is None:
        return specs
    return tuple(
        replace(s, value_range=declared, range_source=RANGE_DECLARED) if s.is_image else s
        for s in specs
    )


def declared_range(path: str | os.PathLike[str]) -> tuple[float, float] | None:
    """The input value range a model folder declares in one of :data:`DECLARATION_FILES`.

    Returns None when no such file holds ``{"input": {"value_range": [low, high]}}``; a
    file that cannot be read is logged and ignored (the range is then assumed).
    """
    folder = Path(path)
    if not folder.is_dir():
        return None
    for name in DECLARATION_FILES:
        file = folder / name
        if not file.is_file():
            continue
        try:
            found = json.loads(file.read_text(encoding="utf-8"))["input"]["value_range"]
            return check_range(found, name=f"input.value_range in {name}")
        except (OSError, ValueError, KeyError, TypeError) as error:
            _log.warning("Ignoring the value range in %s: %s", file, error)
    return None
