"""Where a model is: a handle turned into a local folder, and the model file inside it.

Both halves of the models package need this: :mod:`._load` (before it loads) and
:mod:`._scan` (before it scans). It imports neither, so they never import each other
back::

    handle ──resolve_handle──▶ folder or file ──keras_file──▶ model.keras, or None
                                             (a SavedModel: saved_model.pb / .pbtxt)

Example:
    >>> from hublayer import testing
    >>> folder = resolve_handle(testing.image_feature_vector("/tmp/ifv-locate", dim=4))
    >>> keras_file(folder) is None, is_hub_module_v1(folder)
    (True, False)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hublayer import config

__all__ = [
    "HUB_MODULE_FILE",
    "SAVED_MODEL_FILES",
    "Handle",
    "is_hub_module_v1",
    "keras_file",
    "resolve",
    "resolve_handle",
]

#: The files that make a folder a SavedModel (binary, or text).
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
#: The file that marks the legacy TF1 Hub format.
HUB_MODULE_FILE = "tfhub_module.pb"
_KERAS_SUFFIX = ".keras"

Handle = str | os.PathLike[str]


def _as_handle(handle: Any) -> Any:
    """A path object as its string; anything else as is (``resolve`` rejects non-strings)."""
    return os.fspath(handle) if isinstance(handle, os.PathLike) else handle


def _local_folder(handle: Any) -> Path | None:
    """``handle`` as an absolute path when it names a local folder, else None.

    ``resolve`` uses such folders in place; answering here first keeps the handles
    package (cache, downloads) out of a process that only loads local models.
    """
    text = _as_handle(handle)
    if not isinstance(text, str) or "://" in text or not text.strip():
        return None
    if config.lockfile() is not None or config.locked():  # resolve checks the lock file
        return None
    path = Path(text.strip()).expanduser().absolute()
    return path if path.is_dir() else None


def resolve(handle: Any, load_format: str | None = None) -> str:
    """Where ``handle``'s model is: a local folder, or (``UNCOMPRESSED``) a ``gs://`` one.

    Args:
        handle: any handle ``hublayer.resolve`` accepts, or a local path.
        load_format: as ``hublayer.resolve``'s; ``None`` follows
            ``$TFHUB_MODEL_LOAD_FORMAT``.
    """
    local = _local_folder(handle)
    if local is not None:
        return str(local)
    from hublayer.handles import resolve as resolve_in_cache

    return resolve_in_cache(_as_handle(handle), load_format=load_format)


def resolve_handle(handle: Handle) -> Path:
    """Turn a handle into a local path, through ``hublayer.resolve``.

    Always a local copy: ``TFHUB_MODEL_LOAD_FORMAT=UNCOMPRESSED`` is honoured by
    ``hublayer.load`` only (a layer embeds its model folder in ``.keras`` files).

    Args:
        handle: any handle ``hublayer.resolve`` accepts, or a local path.

    Returns:
        The local folder (or ``.keras`` file) the handle points to.

    Raises:
        HandleError, ModelNotFoundError, NotCachedError, DownloadError...: as
            ``hublayer.resolve`` raises them (``HandleError`` for a non-string).
    """
    return Path(resolve(handle, load_format="COMPRESSED"))


def is_hub_module_v1(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is in the legacy TF1 Hub format (it holds ``tfhub_module.pb``)."""
    return Path(path, HUB_MODULE_FILE).is_file()


def keras_file(path: Path) -> Path | None:
    """The ``.keras`` file ``path`` names, or the one a folder without a SavedModel holds.

    None for a SavedModel folder, a folder with no or several ``.keras`` files, and
    anything else.
    """
    if path.is_file() and path.suffix == _KERAS_SUFFIX:
        return path
    if path.is_dir() and not any((path / name).exists() for name in SAVED_MODEL_FILES):
        candidates = sorted(path.glob(f"*{_KERAS_SUFFIX}"))
        if len(candidates) == 1:
            return candidates[0]
    return None
