"""Pack a model folder (or file) into a ``.tar.gz`` the way tfhub.dev and Kaggle serve it.

tfhub.dev's ``?tf-hub-format=compressed`` and Kaggle's ``model.tar.gz`` downloads hold
the model's files at the archive root, with no enclosing folder::

    saved_model.pb
    variables/variables.data-00000-of-00001
    variables/variables.index
    assets/...            (when the model has assets)

Archives are reproducible: members are sorted, owned by 0:0, dated 0, and the gzip header
carries no time stamp, so the same folder gives the same bytes (and the same sha256).

Example:
    >>> import tarfile
    >>> from hublayer.testing import archive, text_embedding
    >>> tgz = archive(text_embedding("/tmp/nnlm"), "/tmp/nnlm.tar.gz")
    >>> "saved_model.pb" in tarfile.open(tgz).getnames()
    True
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["archive"]


def archive(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    dot_prefix: bool = False,
    overwrite: bool = True,
) -> str:
    """Write ``src`` (a model folder, or one file such as a ``.keras``) as a ``.tar.gz``.

    Args:
        src: the folder whose contents go to the archive root, or a single file.
        dest: the archive to write; it must end in ``.tar.gz`` or ``.tgz``.
        dot_prefix: name members ``./saved_model.pb``... and add ``./`` and folder
            entries, as ``tar -czf dest -C src .`` does. Both layouts occur in the wild.
        overwrite: replace an existing file at ``dest``.

    Returns:
        ``dest`` as a string.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ValueError: ``dest`` does not end in ``.tar.gz`` or ``.tgz``.
        FileExistsError: ``dest`` exists and ``overwrite`` is False.

    Example:
        >>> from hublayer.testing import archive, image_feature_vector
        >>> archive(image_feature_vector("/tmp/ifv"), "/tmp/ifv.tar.gz")
        '/tmp/ifv.tar.gz'
    """
    source = Path(src)
    if not source.exists():
        raise FileNotFoundError(
            f"Expected a model folder or file to archive. Received: src={str(source)!r}, "
            "which does not exist."
        )
    if not str(dest).endswith((".tar.gz", ".tgz")):
        raise ValueError(
            f"Expected dest to end in '.tar.gz' or '.tgz'. Received: dest={str(dest)!r}."
        )
    if source.is_dir():
        members = sorted(p for p in source.rglob("*") if p.is_file() or p.is_dir())
        root = source
    else:
        members, root = [source], source.parent
    with (
        staged_path(dest, overwrite) as staging,
        open(staging, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        if dot_prefix and source.is_dir():
            tar.addfile(_info(".", directory=True))
        for member in members:
            name = member.relative_to(root).as_posix()
            name = f"./{name}" if dot_prefix else name
            if member.is_dir():
                if dot_prefix:
                    tar.addfile(_info(name, directory=True))
                continue
            with open(member, "rb") as data:
                tar.addfile(_info(name, size=member.stat().st_size), data)
    return str(dest)


def _info(name: str, *, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    return info


@contextmanager
def staged_path(path: str | os.PathLike[str], overwrite: bool) -> Iterator[Path]:
    """Yield a fresh path to write to; on success it replaces ``path`` in one rename.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"Expected a new path. Received: path={str(target)!r}, which exists. "
            "Pass overwrite=True to replace it."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        staging = scratch / target.name
        yield staging
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        staging.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
