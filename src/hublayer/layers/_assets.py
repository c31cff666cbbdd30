"""The wrapped SavedModel inside a ``.keras`` archive, so a saved model is self-contained.

Keras 3 gives every layer a folder in the archive (``save_assets`` / ``load_assets``).
A ``KerasLayer`` writes there::

    assets/<path of the layer>/
    ├── hublayer.json        {"embedded": true, "handle": "...", "digest": "sha256:..."}
    └── saved_model/         a byte copy of the resolved model folder (when embedded)

``digest`` is the copy's content digest (:func:`hublayer.handles.content_digest`).
:func:`take_embedded` checks the copy against it, and against the pin of a pinned
handle, before anything of it loads: a changed copy raises ``IntegrityError`` even when
it would scan clean. (A file whose record was rewritten along with its copy is another
file; pin the handle, and keep ``.keras`` files where only you can write.)

The copy holds the *original* files; fine-tuned values live in the archive's weights file
like any layer's, and are applied after the copy is loaded. Keras deletes its extracted
folder when ``load_model`` returns, but a loaded model keeps needing its files (asset
files such as vocabularies, and a later ``model.save``), so :func:`take_embedded` moves
the copy into a folder the layer owns, removed when the layer is garbage-collected.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

__all__ = ["OwnedFolder", "read_marker", "refuse_late_copy", "take_embedded", "write_assets"]

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
    """Write a copy of ``source`` unless it is ``None`` (embedding off), and the marker
    with the copy's content digest."""
    from hublayer.handles import content_digest

    folder = Path(assets_dir)
    folder.mkdir(parents=True, exist_ok=True)
    marker: dict[str, Any] = {"embedded": source is not None, "handle": handle}
    if source is not None:
        shutil.copytree(source, folder / EMBEDDED_DIRNAME, dirs_exist_ok=True)
        marker["digest"] = content_digest(folder / EMBEDDED_DIRNAME)
    (folder / MARKER_FILENAME).write_text(json.dumps(marker))


def read_marker(assets_dir: str | None) -> dict[str, Any] | None:
    """The marker written by :func:`write_assets`, or ``None`` when there is none."""
    if assets_dir is None:
        return None
    marker = Path(assets_dir, MARKER_FILENAME)
    if not marker.is_file():
        return None
    value = json.loads(marker.read_text())
    return value if isinstance(value, dict) else None


def _expected(marker: dict[str, Any] | None, handle: Any) -> list[tuple[str, str]]:
    """``(digest, what pinned it)`` pairs the embedded copy must match."""
    from hublayer.handles import split_pin

    found: list[tuple[str, str]] = []
    if marker is not None and marker.get("digest") is not None:
        found.append((str(marker["digest"]), "recorded in the .keras file when it was saved"))
    for name in (marker or {}).get("handle"), handle:
        if isinstance(name, str | os.PathLike):
            pin = split_pin(os.fspath(name))[1]
            if pin is not None:
                found.append((pin, f"pinned in the layer's handle {os.fspath(name)!r}"))
    return found


def _refused_anyway(folder: Path, safe_mode: bool | None) -> bool:
    """Whether loading ``folder`` is refused before anything of it runs: it holds no
    model at all, or the scan (on) finds it unsafe. Such a copy is left to that refusal,
    which says more than a digest does."""
    from hublayer import config

    if not any(folder.glob("saved_model.pb*")) and not any(folder.glob("*.keras")):
        return True
    if not config.safe_mode(safe_mode):
        return False
    from hublayer.models import scan

    return not scan(folder).safe


def take_embedded(
    assets_dir: str | None, handle: Any = None, safe_mode: bool | None = None
) -> OwnedFolder | None:
    """Move the embedded model out of Keras's temporary folder, or ``None`` if absent.

    The copy is checked against the digest the marker records, and against the pin of a
    pinned ``handle`` (the layer's), before anything of it is loaded. A changed copy
    that the loader refuses anyway (no model in it, or unsafe with ``safe_mode`` on) is
    returned, so that refusal is the one reported.

    Raises:
        IntegrityError: the copy's content differs (it is deleted then).
    """
    if assets_dir is None:
        return None
    source = Path(assets_dir, EMBEDDED_DIRNAME)
    if not source.is_dir():
        return None
    expected = _expected(read_marker(assets_dir), handle)
    owned = OwnedFolder(source)
    if expected:
        from hublayer.errors import IntegrityError
        from hublayer.handles import content_digest

        actual = content_digest(owned.path)
        for digest, pinned_by in expected:
            if actual != digest and not _refused_anyway(owned.path, safe_mode):
                raise IntegrityError(
                    f"Expected the model embedded for handle={handle!r} to have the content "
                    f"digest {digest} ({pinned_by}). Received: {actual}: its files were "
                    "changed inside the .keras file. Nothing of it was loaded. Save the "
                    "model again from a trusted copy, or load a .keras file you trust.",
                    handle=None if handle is None else str(handle),
                    path=str(assets_dir),
                    expected=digest,
                    received=actual,
                    pinned_by=pinned_by,
                )
    return owned


def refuse_late_copy(assets_dir: str | None, handle: Any) -> None:
    """Refuse an embedded copy that arrives after the layer loaded its handle instead.

    A layer asked for its model while a ``.keras`` file loads, before Keras hands it the
    archive (a container layer that reads the model in ``from_config`` or traces its
    ``call``), loads the original handle. The file's copy is then never used: a
    silently different model when the original changed, a failure offline.

    Raises:
        IntegrityError: ``assets_dir`` holds an embedded copy.
    """
    if assets_dir is None or not Path(assets_dir, EMBEDDED_DIRNAME).is_dir():
        return
    from hublayer.errors import IntegrityError

    raise IntegrityError(
        f"Expected the model of handle={handle!r} to load from its copy in the .keras "
        "file. Received: a request for the model before Keras handed over that copy, "
        "so the original handle was loaded instead and the copy would go unused. A "
        "layer that holds this one asks for its model too early (in from_config, or "
        "by tracing call instead of giving compute_output_spec); fix that layer.",
        handle=handle,
        pinned_by="the .keras file",
    )
