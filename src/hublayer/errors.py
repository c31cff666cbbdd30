"""The errors hublayer raises.

Every error derives from :class:`HublayerError` *and* from the builtin it refines, so
``except FileNotFoundError`` keeps working in code written for ``tensorflow_hub``.
Each one carries the fields it concerns (handle, path, url, file, offset, ...) and its
message says what was expected, what was received, and what to do.

Hierarchy::

    HublayerError (Exception)
    ├── HandleError (ValueError)             a handle string that fits no accepted form
    │   └── LockFileError                    a lock file that cannot be read (syntax, version)
    ├── NotCachedError (FileNotFoundError)   offline, and the entry is not in the cache
    ├── ModelNotFoundError (FileNotFoundError)  a path holds no loadable model
    ├── InvalidModelError (ValueError)       a folder, or a server's answer, that is no model
    ├── DownloadError (ConnectionError)      HTTP or transport failure, with url and status
    ├── CorruptEntryError (OSError)          a cache entry fails its manifest check
    ├── IntegrityError (ValueError)          content that differs from its pin (sha256 digest)
    ├── UnsafeArchiveError (ValueError)      an archive member would escape its entry
    ├── UnsafeModelError (PermissionError)  a model whose ops reach files, network or Python
    ├── CacheLockError (TimeoutError)        another process held the entry's lock too long
    ├── InsufficientSpaceError (OSError)     not enough free disk for a download
    ├── SignatureError (ValueError)          a wrong signature / output_key / input spec
    ├── NotTrainableError (ValueError)       trainable=True on a TF1 graph, or selecting nothing
    ├── BackendError (NotImplementedError)   a Keras backend other than TensorFlow
    ├── RecordError (ValueError)             a corrupt TFRecord, with file, index and offset
    ├── SchemaError (ValueError)             a schema that cannot describe or parse the data
    ├── SpecMismatchError (ValueError)       data that cannot feed the model, before training
    ├── TrainingError (RuntimeError)         a transfer-learning run that cannot go on
    ├── UnsupportedVersionError (RuntimeError)  a TF/Keras/tf2jax version whose private
    │                                        APIs hublayer was not written for
    └── MissingExtraError (ImportError)      an optional dependency (an extra) is not installed

Example:
    >>> from hublayer.errors import NotCachedError
    >>> err = NotCachedError("not cached", handle="kaggle://google/x/tf2/y/1")
    >>> isinstance(err, FileNotFoundError), err.handle
    (True, 'kaggle://google/x/tf2/y/1')
    >>> err = SchemaError("No feature 'label'.", fix=Fix("Pass label=.", "Pass --label."))
    >>> str(err), err.cli_message()
    ("No feature 'label'. Pass label=.", "No feature 'label'. Pass --label.")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "BackendError",
    "CacheLockError",
    "CorruptEntryError",
    "DownloadError",
    "Fix",
    "HandleError",
    "HublayerError",
    "ImageDecodeError",
    "InsufficientSpaceError",
    "IntegrityError",
    "InvalidModelError",
    "LockFileError",
    "MissingExtraError",
    "ModelNotFoundError",
    "NotCachedError",
    "NotTrainableError",
    "OutputExistsError",
    "OutputNotWritableError",
    "RecordError",
    "SchemaError",
    "SignatureError",
    "SpecMismatchError",
    "TrainingError",
    "UnsafeArchiveError",
    "UnsafeModelError",
    "UnsupportedVersionError",
]


@dataclass(frozen=True)
class Fix:
    """What fixes an error, worded for each kind of caller.

    Attributes:
        python: the sentence for Python callers, naming the argument
            (``'Pass delimiter=";".'``).
        cli: the same for CLI users, naming the flag (``'Pass --delimiter ";".'``).

    Example:
        >>> Fix("Pass label=.", "Pass --label.").cli
        'Pass --label.'
    """

    python: str
    cli: str


class HublayerError(Exception):
    """Base class of every hublayer error.

    Keyword arguments become attributes, so callers can react to the fields instead of
    parsing the message: ``err.handle``, ``err.path``, ``err.url`` and so on. Fields that
    an error type declares but that were not given are ``None``.

    Args:
        message: what was expected, and what was received (and what to do, when no
            ``fix`` says it).
        fix: the advice that fixes it, for Python callers and CLI users; ``str(error)``
            appends ``fix.python``, :meth:`cli_message` appends ``fix.cli``.
        **fields: the handle, path, url, file, offset... the error concerns.
    """

    #: The fields this error type always has (``None`` when not given); each subclass
    #: also annotates them, so type checkers know ``err.file``, ``err.offset``...
    fields: tuple[str, ...] = ()

    def __init__(self, message: str, *, fix: Fix | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        for name in self.fields:
            setattr(self, name, fields.pop(name, None))
        for name, value in fields.items():
            setattr(self, name, value)

    def __str__(self) -> str:
        return self.message if self.fix is None else f"{self.message} {self.fix.python}"

    def cli_message(self) -> str:
        """The message with the fix worded for the command line (the flag, not the
        argument)."""
        return self.message if self.fix is None else f"{self.message} {self.fix.cli}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep errors picklable across processes (multiprocessing, Ray tasks).
        state = {k: v for k, v in self.__dict__.items() if k != "message"}
        return (_rebuild, (type(self), self.message, state))


def _rebuild(cls: type[HublayerError], message: str, state: dict[str, Any]) -> HublayerError:
    return cls(message, **state)


class HandleError(HublayerError, ValueError):
    """A handle string fits none of the accepted forms, or more than one."""

    fields: tuple[str, ...] = ("handle",)
    handle: Any


class LockFileError(HandleError):
    """A lock file (``hublayer.lock``) that cannot be read: not TOML or JSON, an unknown
    ``version``, a malformed entry, or two entries for one handle; or, with
    ``HUBLAYER_LOCKED=1``, a handle it does not list.

    A :class:`HandleError`: its entries are the handles (and pins) a program uses.
    """

    fields = ("handle", "path")
    handle: Any
    path: Any


class NotCachedError(HublayerError, FileNotFoundError):
    """Offline mode is on and the handle has no complete cache entry."""

    fields = ("handle", "path")
    handle: Any
    path: Any


class ModelNotFoundError(HublayerError, FileNotFoundError):
    """A path exists (or should) but holds no SavedModel or ``.keras`` file."""

    fields = ("handle", "path")
    handle: Any
    path: Any


class InvalidModelError(HublayerError, ValueError):
    """A folder exists but holds no SavedModel, or a server names no model location.

    A ``ValueError``, as in tensorflow_hub: a folder without ``saved_model.pb`` (or
    ``.pbtxt``), and with ``TFHUB_MODEL_LOAD_FORMAT=UNCOMPRESSED`` a server that answers
    anything but a 303 to a ``gs://`` folder.
    """

    fields = ("handle", "path", "url", "status")
    handle: Any
    path: Any
    url: str | None
    status: int | None


class DownloadError(HublayerError, ConnectionError):
    """A download failed: HTTP status, dropped connection, short body."""

    fields = ("url", "status", "handle")
    url: str | None
    status: int | None
    handle: Any


class CorruptEntryError(HublayerError, OSError):
    """A cache entry does not match its manifest (missing file, wrong size or hash)."""

    fields = ("handle", "path", "problems")
    handle: Any
    path: Any
    problems: Any


class IntegrityError(HublayerError, ValueError):
    """A model's content differs from the digest it was pinned to; nothing was loaded.

    ``expected`` and ``received`` are both ``sha256:<64 hex>`` content digests (see
    :func:`hublayer.handles.content_digest`); ``pinned_by`` says where the expected one
    came from (the handle, a lock file, or a ``.keras`` file's record).
    """

    fields = ("handle", "path", "expected", "received", "pinned_by")
    handle: Any
    path: Any
    expected: str | None
    received: str | None
    pinned_by: str | None


class UnsafeArchiveError(HublayerError, ValueError):
    """An archive member would be written outside its entry, or the archive is too big."""

    fields = ("path", "member")
    path: Any
    member: str | None


class UnsafeModelError(HublayerError, PermissionError):
    """A model's scan found ops that reach files, the network or Python; it was not loaded.

    ``findings`` holds the high-severity :class:`hublayer.models.Finding` objects.
    """

    fields = ("handle", "path", "findings")
    handle: Any
    path: Any
    findings: Any


class CacheLockError(HublayerError, TimeoutError):
    """Another live process held a cache entry's lock for longer than the timeout."""

    fields = ("path", "timeout")
    path: Any
    timeout: float | None


class InsufficientSpaceError(HublayerError, OSError):
    """The cache's file system has less free space than a download needs."""

    fields = ("path", "needed", "free")
    path: Any
    needed: int | None
    free: int | None


class SignatureError(HublayerError, ValueError):
    """A wrong signature, output key, or an input the model cannot take."""

    fields = ("handle", "name", "available", "expected", "received")
    handle: Any
    name: str | None
    available: Any
    expected: Any
    received: Any


class NotTrainableError(HublayerError, ValueError):
    """``trainable=True`` on a TF1 graph, or partial fine-tuning that selects no variable.

    A model with no trainable variables at all is not an error: as in tensorflow_hub, the
    layer logs "zero trainable weights" once and works.
    """

    fields = ("handle",)
    handle: Any


class BackendError(HublayerError, NotImplementedError):
    """The active Keras backend cannot run a SavedModel layer."""

    fields = ("backend",)
    backend: str | None


class RecordError(HublayerError, ValueError):
    """A TFRecord file or record is missing, truncated or corrupt."""

    fields = ("file", "index", "offset")
    file: str | None
    index: int | None
    offset: int | None


class SchemaError(HublayerError, ValueError):
    """A schema cannot describe, or parse, the records it is applied to."""

    fields = ("feature",)
    feature: str | None


class SpecMismatchError(HublayerError, ValueError):
    """The data cannot feed the model; raised before any training starts."""

    fields = ("feature", "expected", "received")
    feature: str | None
    expected: Any
    received: Any


class ImageDecodeError(HublayerError, ValueError):
    """Files that should be images cannot be decoded (empty, truncated, corrupt)."""

    fields = ("files",)
    files: Any


class OutputExistsError(HublayerError, FileExistsError):
    """An output is there already and overwriting was not asked for."""

    fields = ("path",)
    path: Any


class OutputNotWritableError(HublayerError, PermissionError):
    """An output folder cannot be created or written to; raised before any work."""

    fields = ("path",)
    path: Any


class TrainingError(HublayerError, RuntimeError):
    """A transfer-learning run cannot start or go on."""

    fields = ("stage",)
    stage: str | None


class UnsupportedVersionError(HublayerError, RuntimeError):
    """An installed library's version lacks, or may have changed, a private API hublayer
    uses; the message names the API, the version and the supported range."""

    fields = ("package", "version", "supported", "api")
    package: str | None
    version: str | None
    supported: str | None
    api: str | None


class MissingExtraError(HublayerError, ImportError):
    """An optional dependency is not installed; the message names the extra to install.

    For a model whose ops need an op library (TensorFlow Text), ``ops`` names those ops
    and ``handle`` the model.
    """

    fields = ("extra", "package", "handle", "ops")
    extra: str | None
    package: str | None
    handle: Any
    ops: Any
