"""The wrapped SavedModel inside a ``.keras`` archive, so a saved model is self-contained.

Keras 3 gives every layer a folder in the archive (``save_assets`` / ``load_assets``).
A ``KerasLayer`` writes there::

    assets/<path of the layer>/
    ├── hublayer.json        {"embedded": true, "handle": "..."}  always written
    └── saved_model/         a byte copy of the resolved model folder (when embedded)

The copy holds the *original* files; fine-tuned values live in the archive's weights file
like any layer's, and are applied after the copy is loaded. Keras deletes its extracted
folder when ``load_model`` returns, but a loaded model keeps needing its files (asset
files such as vocabularies, and a later ``model.save``), so :func:`take_embedded` moves
the copy into a folder the layer owns, removed when the layer is garbage-collected.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

__all__ = ["OwnedFolder", "read_marker", "take_embedded", "write_assets"]

EMBEDDED_DIRNAME = "saved_model"
MARKER_FILENAME = "hublayer.json"


class OwnedFolder:
    """A private copy of a model folder, deleted when this object is garbage-collected.

    Args:
        source: the folder to move into a new private temporary folder.
    """

    def __init__(self, source: Path) -> None:
        root = Path(tempfile.mkdtemp(prefix="hublayer-embedded-"))
        self.path = root / EMBEDDED_DIRNAME
        shutil.move(str(source), str(self.path))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(root), True)

    def __repr__(self) -> str:
        return f"OwnedFolder({str(self.path)!r})"


def write_assets(assets_dir: str, *, source: Path | None, handle: str | None) -> None:
    """Write the marker, and a copy of ``source`` unless it is ``None`` (embedding off)."""
    folder = Path(assets_dir)
    folder.mkdir(parents=True, exist_ok=True)
    marker = {"embedded": source is not None, "handle": handle}
    (folder / MARKER_FILENAME).write_text(json.dumps(marker))
    if source is not None:
        shutil.copytree(source, folder / EMBEDDED_DIRNAME, dirs_exist_ok=True)


def read_marker(assets_dir: str | None) -> dict[str, Any] | None:
    """The marker written by :func:`write_assets`, or ``None`` when there is none."""
    if assets_dir is None:
        return None
    marker = Path(assets_dir, MARKER_FILENAME)
    if not marker.is_file():
        return None
    value = json.loads(marker.read_text())
    return value if isinstance(value, dict) else None


def take_embedded(assets_dir: str | None) -> OwnedFolder | None:
    """Move the embedded model out of Keras's temporary folder, or ``None`` if absent."""
    if assets_dir is None:
        return None
    source = Path(assets_dir, EMBEDDED_DIRNAME)
    if not source.is_dir():
        return None
    return OwnedFolder(source)
