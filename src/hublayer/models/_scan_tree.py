"""The model folder itself: every entry is a plain folder or a plain file of its own.

TensorFlow reads whatever the folder's names lead to. A link lets a model that looks
harmless read a file it does not hold: ``variables/`` as a symlink loads another model's
weights, and an asset that is a hard link to ``~/.ssh/id_rsa`` is read as a vocabulary by
an op the graph scan allows (it reads "its own" asset). So, at every level of the folder
(``assets/`` and ``variables/`` included)::

    symlink (to a file or a folder, inside or outside)   high: "(link)"
    regular file with st_nlink > 1 (a hard link)         high: "(hard link)"
    FIFO, socket, device                                 high: "(special file)"

The walk never follows a link (``lstat`` only), so a linked folder is reported, not
entered. The folder passed in may itself be reached through a link: that is the caller's
choice of path, not the model's content.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "saved_model.pb").write_bytes(b"")
    0
    >>> (folder / "alias.pb").symlink_to(folder / "saved_model.pb")
    >>> [(f.op, f.node) for f in tree_findings(folder)]
    [('(link)', 'alias.pb')]
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from hublayer.models._scan_report import Finding

__all__ = ["LINK_WHY", "TREE_RULES", "tree_findings"]

_HIGH = "high"
#: Bump when what this module reports changes, so cached reports are made again.
TREE_RULES = "tree-1"

LINK_WHY = (
    "a link in the model folder lets the model read a file it does not hold; copy the "
    "files into the folder (cp -rL) instead of linking them"
)
HARD_LINK_WHY = (
    "a hard link (st_nlink > 1) shares its data with a file elsewhere, which the model "
    "then reads; copy the file into the folder instead (cp, not ln)"
)
SPECIAL_WHY = "not a regular file or folder (FIFO, socket, device); remove it from the folder"


def tree_findings(folder: Path, *, asset_why: str | None = None) -> Iterator[Finding]:
    """Every link, hard link and special file under ``folder``, in name order.

    Args:
        folder: the model folder (its own path is not judged, only what is inside).
        asset_why: the explanation for a symlink under ``assets/`` that points outside
            the folder (the vocabulary that is really ``/etc/passwd``); other links get
            :data:`LINK_WHY`.
    """
    root = folder.resolve()
    yield from _walk(folder, folder, root, asset_why)


def _walk(folder: Path, base: Path, root: Path, asset_why: str | None) -> Iterator[Finding]:
    try:
        entries = sorted(os.scandir(base), key=lambda entry: entry.name)
    except OSError as error:
        rel = base.relative_to(folder).as_posix()
        yield Finding("(unreadable)", "tree", rel, _HIGH, SPECIAL_WHY, rel, str(error))
        return
    for entry in entries:
        path = Path(entry.path)
        rel = path.relative_to(folder).as_posix()
        info = entry.stat(follow_symlinks=False)
        mode = info.st_mode
        if stat.S_ISLNK(mode):
            target = os.readlink(path)
            escapes = not path.resolve().is_relative_to(root)
            why = asset_why if asset_why and escapes and rel.startswith("assets/") else LINK_WHY
            yield Finding("(link)", "tree", rel, _HIGH, why, rel, target)
        elif stat.S_ISDIR(mode):
            yield from _walk(folder, path, root, asset_why)
        elif not stat.S_ISREG(mode):
            yield Finding(
                "(special file)", "tree", rel, _HIGH, SPECIAL_WHY, rel, stat.filemode(mode)
            )
        elif info.st_nlink > 1:
            detail = f"{info.st_nlink} names share this file's data"
            yield Finding("(hard link)", "tree", rel, _HIGH, HARD_LINK_WHY, rel, detail)
