"""The handle types: one frozen dataclass per accepted form, each with its cache key.

Keys are ``/``-separated plain names (see :mod:`hublayer.handles._maintenance` for the layout).
A variable-depth path is folded into one segment with ``~``, so every key of a source
has the same depth and no entry folder can sit inside another one.

Example:
    >>> KaggleHandle("google", "bert", "tensorFlow2", "en-uncased", 3).key
    'kaggle/google/bert/tensorflow2/en-uncased/3'
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from hublayer import config
from hublayer.errors import HandleError

__all__ = [
    "ARCHIVE_SUFFIXES",
    "CN_ARCHIVES",
    "CN_HUB",
    "MAX_SEGMENT",
    "SEGMENT",
    "Handle",
    "HfHandle",
    "HttpHandle",
    "KaggleHandle",
    "LocalHandle",
    "StoreHandle",
    "TfhubHandle",
    "safe_key",
    "segment",
]

_H = TypeVar("_H")


def _memo_key(compute: Callable[[_H], str]) -> Callable[[_H], str]:
    """Remember the keys of the last 1024 handles: they are frozen, so a key never changes.

    ``resolve`` of a cached handle needs its key on every call; hashing a URL each time
    was a quarter of that call's cost.
    """
    return functools.lru_cache(maxsize=1024)(compute)


SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@=-]*")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip", ".tar.bz2", ".tar.xz")


#: Longest key segment kept as is; longer ones are shortened and hashed, so no file or
#: folder name of the cache (``<segment>.json``, ``.lock``) reaches the 255-byte limit.
MAX_SEGMENT = 80


def _shortened(text: str) -> str:
    """A readable prefix of a too-long name plus a hash of all of it."""
    readable = re.sub(r"[^A-Za-z0-9._~-]+", "_", text).strip("._~-") or "x"
    return f"{readable[:48].rstrip('._~-')}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def segment(text: str) -> str:
    """``text`` if it is a plain name, else a readable stand-in plus a short hash.

    Names longer than :data:`MAX_SEGMENT` are shortened the same way (a 5,000-character
    URL must not become a file name the file system refuses).
    """
    if SEGMENT.fullmatch(text) and text not in (".", ".."):
        return text if len(text) <= MAX_SEGMENT else _shortened(text)
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-") or "x"
    return f"{readable[:40]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def safe_key(*parts: str) -> str:
    """Join ``parts`` into a cache key whose every segment is a safe folder name.

    Segments that are not plain names (``..``, spaces, unicode...) are replaced by a
    readable stand-in plus a short hash, so two different inputs never share a key.

    Example:
        >>> safe_key("s3", "bucket", "my model", "v1")
        's3/bucket/my_model-76eeb051/v1'
    """
    return "/".join(segment(s) for part in parts for s in part.split("/") if s)


def _tail(path: str) -> str:
    """A variable-depth path as ONE key segment (``a/b/c`` -> ``a~b~c``, empty -> ``@root``).

    Keys of one source then all have the same depth, so no entry folder can ever sit
    inside another one (``s3://b/models`` and ``s3://b/models/bert.tar.gz``).
    """
    segments = [segment(s) for s in path.split("/") if s]
    joined = "~".join(segments) if segments else "@root"
    return joined if len(joined) <= MAX_SEGMENT else _shortened(path)


@dataclass(frozen=True, slots=True)
class LocalHandle:
    """A folder or file on this machine; folders are used in place, archives unpacked.

    ``given`` is the handle as written (``"/foo/"``, ``"~/m"``), kept for messages as
    tensorflow_hub words them ("/foo/ does not exist."); it takes no part in equality.
    """

    path: Path
    given: str = field(default="", compare=False, repr=False)

    @property
    def is_archive(self) -> bool:
        """Whether the path names an archive (by its suffix) that must be unpacked."""
        return self.path.name.lower().endswith(ARCHIVE_SUFFIXES)

    @property
    @_memo_key
    def key(self) -> str:
        """Cache key for an unpacked local archive (unused for folders)."""
        digest = hashlib.sha256(str(self.path).encode()).hexdigest()[:16]
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", self.path.name).strip("._") or "archive"
        return safe_key("local", f"{name[:60]}-{digest}")

    def __str__(self) -> str:
        return str(self.path)


#: tensorflow_hub's mirror for China: handles on the first host download their archive
#: from the second, as ``<path>.tar.gz``.
CN_HUB = "https://hub.tensorflow.google.cn"
CN_ARCHIVES = "https://gcs.tensorflow.google.cn/tfhub-modules"


@dataclass(frozen=True, slots=True)
class TfhubHandle:
    """``https://tfhub.dev/<publisher>/<name...>/<version>`` (or its ``cn`` mirror).

    ``mirror="cn"`` is the ``https://hub.tensorflow.google.cn/...`` spelling: the same
    model, so the same cache entry, downloaded from ``gcs.tensorflow.google.cn``.

    Example:
        >>> TfhubHandle("google/nnlm-en-dim128/2", mirror="cn").url()
        'https://gcs.tensorflow.google.cn/tfhub-modules/google/nnlm-en-dim128/2.tar.gz'
    """

    path: str  # "<publisher>/<name...>/<version>", no leading or trailing slash
    mirror: str = field(default="", repr=False)  # "" (tfhub.dev) or "cn"

    @property
    @_memo_key
    def key(self) -> str:
        """Cache key used until a redirect shows the model's Kaggle identity."""
        *name, version = self.path.split("/")
        return f"tfhub/{segment(name[0])}/{_tail('/'.join(name[1:]))}/{version}"

    def url(self) -> str:
        """The compressed-format URL: the configured tfhub endpoint, or the cn archive."""
        if self.mirror == "cn":
            return f"{CN_ARCHIVES}/{self.path}.tar.gz"
        return f"{config.tfhub_endpoint()}/{self.path}?tf-hub-format=compressed"

    def uncompressed_url(self) -> str:
        """The URL that answers with the model's ``gs://`` folder (a 303)."""
        base = CN_HUB if self.mirror == "cn" else config.tfhub_endpoint()
        return f"{base}/{self.path}?tf-hub-format=uncompressed"

    def __str__(self) -> str:
        return f"{CN_HUB if self.mirror == 'cn' else 'https://tfhub.dev'}/{self.path}"


@dataclass(frozen=True, slots=True)
class KaggleHandle:
    """A Kaggle model instance, with ``version=None`` meaning the newest one."""

    owner: str
    model: str
    framework: str
    variation: str
    version: int | None = None

    @property
    @_memo_key
    def key(self) -> str:
        """Cache key; Kaggle slugs are case-insensitive, so it is lower-cased."""
        if self.version is None:
            raise HandleError(
                f"Expected a Kaggle handle with a version to build a cache key. "
                f"Received: handle={self}. Resolve it first to pick the newest version.",
                handle=str(self),
            )
        parts = (self.owner, self.model, self.framework, self.variation, str(self.version))
        return safe_key("kaggle", *(p.lower() for p in parts))

    @property
    def instance(self) -> str:
        """``owner/model/framework/variation``, as the Kaggle API spells it."""
        return f"{self.owner}/{self.model}/{self.framework}/{self.variation}"

    def with_version(self, version: int) -> KaggleHandle:
        """The same model instance at ``version``."""
        return KaggleHandle(self.owner, self.model, self.framework, self.variation, version)

    def url(self) -> str:
        """The compressed-format URL on the configured Kaggle endpoint (version required)."""
        return (
            f"{config.kaggle_endpoint()}/models/{self.instance}/{self.version}"
            "?tf-hub-format=compressed"
        )

    def uncompressed_url(self) -> str:
        """The URL that answers with the model's ``gs://`` folder (version required)."""
        return (
            f"{config.kaggle_endpoint()}/models/{self.instance}/{self.version}"
            "?tf-hub-format=uncompressed"
        )

    def __str__(self) -> str:
        tail = "" if self.version is None else f"/{self.version}"
        return f"kaggle://{self.instance}{tail}"


@dataclass(frozen=True, slots=True)
class HttpHandle:
    """Any other ``http(s)://`` URL: an archive, or a server speaking the tf-hub format."""

    url: str

    @property
    @_memo_key
    def key(self) -> str:
        """Cache key: the host, the last path segment, and a hash of the whole URL."""
        parts = urlsplit(self.url)
        name = parts.path.rstrip("/").rsplit("/", 1)[-1] or "index"
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        return safe_key("url", parts.netloc.replace(":", "_"), f"{name}-{digest}")

    def request_url(self) -> str:
        """The URL to fetch: archives as given, others with ``tf-hub-format=compressed``."""
        path = urlsplit(self.url).path.lower()
        if path.endswith(ARCHIVE_SUFFIXES) or "tf-hub-format=" in self.url:
            return self.url
        joiner = "&" if "?" in self.url else "?"
        return f"{self.url}{joiner}tf-hub-format=compressed"

    @property
    def is_archive(self) -> bool:
        """Whether the URL's path names an archive (it then has no uncompressed form)."""
        return urlsplit(self.url).path.lower().endswith(ARCHIVE_SUFFIXES)

    def uncompressed_url(self) -> str:
        """The URL with ``tf-hub-format=uncompressed`` (replacing any other format)."""
        parts = urlsplit(self.url)
        query = [q for q in parts.query.split("&") if q and not q.startswith("tf-hub-format=")]
        query.append("tf-hub-format=uncompressed")
        return urlunsplit(parts._replace(query="&".join(query), fragment=""))

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True, slots=True)
class StoreHandle:
    """``gs://`` or ``s3://`` object-store path: a folder, or an archive, via fsspec."""

    protocol: str  # "gs" or "s3"
    bucket: str
    path: str = ""

    @property
    @_memo_key
    def key(self) -> str:
        """Cache key: ``<protocol>/<bucket>/<path, '/' written '~'>``."""
        return f"{self.protocol}/{segment(self.bucket)}/{_tail(self.path)}"

    @property
    def is_archive(self) -> bool:
        """Whether the object's name is that of an archive."""
        return self.path.lower().endswith(ARCHIVE_SUFFIXES)

    def __str__(self) -> str:
        return f"{self.protocol}://{self.bucket}/{self.path}".rstrip("/")


@dataclass(frozen=True, slots=True)
class HfHandle:
    """``hf://<org>/<repo>[@<revision>][/<subfolder>]`` on the Hugging Face Hub."""

    repo_id: str
    revision: str | None = None
    subfolder: str = ""

    @property
    @_memo_key
    def key(self) -> str:
        """Cache key: ``hf/<org>/<repo>/<revision or main>/<subfolder, '/' written '~'>``."""
        rev = segment(self.revision or "main")
        return f"{safe_key('hf', self.repo_id)}/{rev}/{_tail(self.subfolder)}"

    def __str__(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        sub = f"/{self.subfolder}" if self.subfolder else ""
        return f"hf://{self.repo_id}{rev}{sub}"


Handle = LocalHandle | TfhubHandle | KaggleHandle | HttpHandle | StoreHandle | HfHandle
