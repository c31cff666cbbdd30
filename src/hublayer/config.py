"""Every environment variable hublayer reads, in one place.

Variables are read when a value is needed, never at import time, and an explicit
argument always wins over the environment. Each getter takes that argument first::

    cache_dir(explicit)  ->  explicit, else $HUBLAYER_CACHE_DIR, else $TFHUB_CACHE_DIR,
                             else ~/.cache/hublayer

Variables (default in brackets):

- ``HUBLAYER_CACHE_DIR``: root of the model cache [``~/.cache/hublayer``]
- ``TFHUB_CACHE_DIR``: fallback for the above, so old setups keep working
- ``HUBLAYER_OFFLINE``: 1/true means never touch the network [off]
- ``HUBLAYER_TFHUB_ENDPOINT``: base URL that replaces ``https://tfhub.dev``
- ``HUBLAYER_KAGGLE_ENDPOINT``: base URL that replaces ``https://www.kaggle.com``
- ``HUBLAYER_MAX_UNPACK_BYTES``: limit on the unpacked size of one archive [64 GiB]
- ``HUBLAYER_DOWNLOAD_TIMEOUT``: seconds a connection may stall [60]
- ``HUBLAYER_DOWNLOAD_RETRIES``: attempts for one download [5]
- ``HUBLAYER_LOCK_TIMEOUT``: seconds to wait for another process's download [3600]
- ``HUBLAYER_PROGRESS``: 1/0 forces progress bars on or off [bars on a terminal, else lines]
- ``HUBLAYER_SAFE_MODE``: 0 loads models without scanning them for unsafe ops [1]
- ``HUBLAYER_LOCKFILE``: the lock file that pins handles [``./hublayer.lock`` if present]
- ``HUBLAYER_LOCKED``: 1 refuses a handle that is neither pinned nor in the lock file [0]

Example:
    >>> import os
    >>> from hublayer import config
    >>> os.environ["HUBLAYER_OFFLINE"] = "1"
    >>> config.offline(), config.offline(False)
    (True, False)
    >>> del os.environ["HUBLAYER_OFFLINE"]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = [
    "ENV_VARS",
    "LOAD_FORMATS",
    "LOCKFILE_NAME",
    "cache_dir",
    "disable_cert_validation",
    "download_retries",
    "download_timeout",
    "kaggle_endpoint",
    "lock_timeout",
    "lockfile",
    "locked",
    "max_unpack_bytes",
    "model_load_format",
    "offline",
    "progress",
    "safe_mode",
    "tfhub_endpoint",
]

#: Every environment variable hublayer reads. Tests clear these between cases.
ENV_VARS: tuple[str, ...] = (
    "HUBLAYER_CACHE_DIR",
    "TFHUB_CACHE_DIR",
    "HUBLAYER_OFFLINE",
    "HUBLAYER_TFHUB_ENDPOINT",
    "HUBLAYER_KAGGLE_ENDPOINT",
    "HUBLAYER_MAX_UNPACK_BYTES",
    "HUBLAYER_DOWNLOAD_TIMEOUT",
    "HUBLAYER_DOWNLOAD_RETRIES",
    "HUBLAYER_LOCK_TIMEOUT",
    "HUBLAYER_PROGRESS",
    "TFHUB_DOWNLOAD_PROGRESS",
    "TFHUB_MODEL_LOAD_FORMAT",
    "TFHUB_DISABLE_CERT_VALIDATION",
    "HUBLAYER_SAFE_MODE",
    "HUBLAYER_LOCKFILE",
    "HUBLAYER_LOCKED",
)

#: The lock file looked for in the working folder when ``HUBLAYER_LOCKFILE`` is unset.
LOCKFILE_NAME = "hublayer.lock"

#: The values ``TFHUB_MODEL_LOAD_FORMAT`` accepts, as tensorflow_hub spells them.
LOAD_FORMATS: tuple[str, ...] = ("AUTO", "COMPRESSED", "UNCOMPRESSED")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value is not None and value.strip() != "" else None


def _flag(name: str) -> bool | None:
    value = _env(name)
    if value is None:
        return None
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(
        f"Expected {name} to be one of 1/0, true/false, yes/no, on/off. "
        f"Received: {name}={value!r}. Fix the variable or unset it."
    )


def _number(name: str, default: float, *, minimum: float = 0.0) -> float:
    value = _env(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number >= minimum:  # also rejects NaN
        raise ValueError(
            f"Expected {name} to be a number >= {minimum:g}. "
            f"Received: {name}={value!r}. Fix the variable or unset it."
        )
    return number


def _local_folder(value: str | os.PathLike[str], name: str) -> Path:
    """``value`` as a path; a ``file://`` URL means the folder it names."""
    text = os.fspath(value)
    if not text.startswith("file://"):
        return Path(text)
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost") or not parts.path:
        raise ValueError(
            f"Expected {name} to be a folder, or a file:// URL on this machine such as "
            f"file:///abs/dir. Received: {text!r}. Write it as file:///<absolute path>."
        )
    return Path(unquote(parts.path))


def cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The root folder of the model cache.

    Args:
        explicit: a folder given by the caller; wins over the environment. A
            ``file:///abs/dir`` URL means ``/abs/dir`` (as in tensorflow_hub).

    Returns:
        ``explicit``, else ``$HUBLAYER_CACHE_DIR``, else ``$TFHUB_CACHE_DIR``, else
        ``~/.cache/hublayer`` (``$XDG_CACHE_HOME/hublayer`` when that is set). The
        path is absolute and user-expanded; it may not exist yet.

    Example:
        >>> str(cache_dir("file:///tmp/models"))
        '/tmp/models'
    """
    if explicit is not None:
        chosen = _local_folder(explicit, "cache_dir")
    elif (value := _env("HUBLAYER_CACHE_DIR")) is not None:
        chosen = _local_folder(value, "HUBLAYER_CACHE_DIR")
    elif (value := _env("TFHUB_CACHE_DIR")) is not None:
        chosen = _local_folder(value, "TFHUB_CACHE_DIR")
    elif (xdg := _env("XDG_CACHE_HOME")) is not None:
        chosen = Path(xdg) / "hublayer"
    else:
        chosen = Path("~/.cache/hublayer")
    return chosen.expanduser().absolute()


def offline(explicit: bool | None = None) -> bool:
    """Whether to avoid the network: ``explicit``, else ``$HUBLAYER_OFFLINE``, else False."""
    if explicit is not None:
        return bool(explicit)
    return bool(_flag("HUBLAYER_OFFLINE"))


def _endpoint(name: str, default: str, explicit: str | None) -> str:
    value = explicit if explicit is not None else (_env(name) or default)
    if not value.startswith(("http://", "https://")):
        raise ValueError(
            f"Expected {name} to be an http(s) base URL such as {default!r}. "
            f"Received: {value!r}. Fix the value or unset the variable."
        )
    return value.rstrip("/")


def tfhub_endpoint(explicit: str | None = None) -> str:
    """Base URL standing in for ``https://tfhub.dev`` (mirrors, tests)."""
    return _endpoint("HUBLAYER_TFHUB_ENDPOINT", "https://tfhub.dev", explicit)


def kaggle_endpoint(explicit: str | None = None) -> str:
    """Base URL standing in for ``https://www.kaggle.com`` (mirrors, tests)."""
    return _endpoint("HUBLAYER_KAGGLE_ENDPOINT", "https://www.kaggle.com", explicit)


def max_unpack_bytes(explicit: int | None = None) -> int:
    """Largest total size one archive may unpack to (archive-bomb guard)."""
    if explicit is not None:
        return int(explicit)
    return int(_number("HUBLAYER_MAX_UNPACK_BYTES", 64 * 2**30, minimum=1))


def download_timeout(explicit: float | None = None) -> float:
    """Seconds a connection may stall before the attempt is retried."""
    if explicit is not None:
        return float(explicit)
    return _number("HUBLAYER_DOWNLOAD_TIMEOUT", 60.0, minimum=0.001)


def download_retries(explicit: int | None = None) -> int:
    """How many attempts one download gets before :class:`DownloadError`."""
    if explicit is not None:
        return int(explicit)
    return int(_number("HUBLAYER_DOWNLOAD_RETRIES", 5, minimum=1))


def lock_timeout(explicit: float | None = None) -> float:
    """Seconds to wait for another process that is downloading the same entry."""
    if explicit is not None:
        return float(explicit)
    return _number("HUBLAYER_LOCK_TIMEOUT", 3600.0, minimum=0.0)


def progress(explicit: bool | None = None) -> bool:
    """Whether to draw progress bars.

    ``explicit``, else ``$HUBLAYER_PROGRESS``, else ``$TFHUB_DOWNLOAD_PROGRESS`` (as in
    tensorflow_hub, any value turns them on, except 0/false/no/off), else on a TTY.
    """
    if explicit is not None:
        return bool(explicit)
    flag = _flag("HUBLAYER_PROGRESS")
    if flag is not None:
        return flag
    tfhub = _env("TFHUB_DOWNLOAD_PROGRESS")
    if tfhub is not None:
        return tfhub.strip().lower() not in _FALSE
    return sys.stderr.isatty()


def model_load_format(explicit: str | None = None) -> str:
    """How tfhub.dev-style handles load: ``explicit``, else ``$TFHUB_MODEL_LOAD_FORMAT``.

    Returns:
        ``"AUTO"`` (the default) or ``"COMPRESSED"``: download the archive into the
        cache. ``"UNCOMPRESSED"``: ask the server for the model's ``gs://`` folder and
        read it in place, without a copy.

    Raises:
        ValueError: a value other than those three (case does not matter).
    """
    value = explicit if explicit is not None else _env("TFHUB_MODEL_LOAD_FORMAT")
    if value is None:
        return "AUTO"
    chosen = value.strip().upper()
    if chosen not in LOAD_FORMATS:
        raise ValueError(
            f"Expected TFHUB_MODEL_LOAD_FORMAT to be one of {', '.join(LOAD_FORMATS)}. "
            f"Received: {value!r}. Fix the value or unset the variable."
        )
    return chosen


def disable_cert_validation(explicit: bool | None = None) -> bool:
    """Whether downloads skip TLS certificate checks (``$TFHUB_DISABLE_CERT_VALIDATION``).

    Off unless the variable is exactly ``true``, as in tensorflow_hub (``TRUE``, ``1`` or
    ``yes`` leave checking on). Only for servers you trust: every client made with it on
    logs a warning.
    """
    if explicit is not None:
        return bool(explicit)
    return _env("TFHUB_DISABLE_CERT_VALIDATION") == "true"


def progress_style(explicit: bool | None = None) -> str:
    """How to show progress: ``"bars"``, ``"lines"`` (one line per step, for logs) or ``"off"``.

    ``explicit`` True/False, else ``$HUBLAYER_PROGRESS`` 1/0, gives bars or nothing; unset,
    bars on a terminal (stderr) and lines elsewhere, so a log is never silent for minutes.
    """
    if explicit is None:
        explicit = _flag("HUBLAYER_PROGRESS")
    if explicit is not None:
        return "bars" if explicit else "off"
    return "bars" if sys.stderr.isatty() else "lines"


def safe_mode(explicit: bool | None = None) -> bool:
    """Whether to scan a model and refuse unsafe ops before it loads.

    ``explicit`` (the ``safe_mode=`` argument), else ``$HUBLAYER_SAFE_MODE``, else True.
    """
    if explicit is not None:
        return bool(explicit)
    flag = _flag("HUBLAYER_SAFE_MODE")
    return True if flag is None else flag


def lockfile(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The lock file that pins unpinned handles, or None when there is none.

    ``explicit``, else ``$HUBLAYER_LOCKFILE`` (also written ``file:///abs/file``; it need
    not exist: reading it then says so), else ``./hublayer.lock`` when that file exists.
    """
    if explicit is not None:
        return _local_folder(explicit, "the lock file")
    value = _env("HUBLAYER_LOCKFILE")
    if value is not None:
        return _local_folder(value, "HUBLAYER_LOCKFILE")
    return Path(LOCKFILE_NAME) if os.path.isfile(LOCKFILE_NAME) else None


def locked(explicit: bool | None = None) -> bool:
    """Strict mode: refuse a handle that has no pin and no lock file entry.

    ``explicit``, else ``$HUBLAYER_LOCKED`` (1/true), else False.
    """
    if explicit is not None:
        return bool(explicit)
    return bool(_flag("HUBLAYER_LOCKED"))
