"""Check an output folder before any work, so a long run cannot fail at its last step.

Example:
    >>> check_writable("runs/new", what="the output", flag="--out", argument="out_dir=")
    PosixPath('runs/new')
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hublayer.errors import Fix, OutputNotWritableError

__all__ = ["check_writable"]


def check_writable(path: str | os.PathLike[str], *, what: str, flag: str, argument: str) -> Path:
    """Check, before any work, that the folder ``path`` can be created and written to.

    Nothing is created: the nearest existing folder is probed with a temp file.

    Args:
        path: the output folder.
        what: what goes there, for the message (``"the training output"``).
        flag: the CLI flag that sets it (``"--out"``).
        argument: the Python argument that sets it (``"out_dir="``).

    Returns:
        ``path`` as a Path.

    Raises:
        OutputNotWritableError: a file is in the way, or the folder is not writable.

    Example:
        >>> check_writable("runs/new", what="the output", flag="--out", argument="out_dir=")
        PosixPath('runs/new')
    """
    target = Path(path)
    probe = target
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    fix = Fix(
        f"Pass {argument} a folder you can write to.", f"Pass {flag} a folder you can write to."
    )
    if not probe.is_dir():
        raise OutputNotWritableError(
            f"Expected {what} folder at {str(target)!r} to be creatable. Received: "
            f"{str(probe)!r} is a file, not a folder.",
            path=str(target),
            fix=fix,
        )
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".hublayer-write-test-"):
            pass
    except OSError as error:
        raise OutputNotWritableError(
            f"Expected {what} folder at {str(target)!r} to be writable. Received: "
            f"{str(probe)!r} cannot be written to ({error.strerror or error}).",
            path=str(target),
            fix=fix,
        ) from None
    return target
