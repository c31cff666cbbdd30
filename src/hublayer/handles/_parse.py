"""Handle strings parsed once into frozen dataclasses.

A handle names a model. Each accepted form is one :class:`Scheme` in the ordered tuple
:data:`SCHEMES`; a string claimed by no scheme, or by more than one, raises
:class:`~hublayer.errors.HandleError` listing every accepted form::

    local   /abs/model, ./model, ./model.tar.gz, file:///abs/model   -> LocalHandle
    tfhub   https://tfhub.dev/<publisher>/<name...>/<version>        -> TfhubHandle
            https://hub.tensorflow.google.cn/<publisher>/<name...>/<version> (mirror)
    kaggle  https://www.kaggle.com/models/<owner>/<model>/<framework>/<variation>[/<version>]
            kaggle://<owner>/<model>/<framework>/<variation>[/<version>]  -> KaggleHandle
    http    any other http(s):// URL (an archive, or ?tf-hub-format=compressed)  -> HttpHandle
    store   gs://<bucket>/<path>, s3://<bucket>/<path>                -> StoreHandle
    hf      hf://<org>/<repo>[@<revision>][/<subfolder>]              -> HfHandle

Parsing never touches the network or the file system (a relative path is made absolute
against the current folder). The configured endpoints (``HUBLAYER_TFHUB_ENDPOINT``,
``HUBLAYER_KAGGLE_ENDPOINT``) are accepted as spellings of tfhub.dev and kaggle.com.

Example:
    >>> from hublayer.handles import parse_handle
    >>> parse_handle("kaggle://google/bert/tensorFlow2/en-uncased/3").key
    'kaggle/google/bert/tensorflow2/en-uncased/3'
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hublayer import config
from hublayer.errors import HandleError
from hublayer.handles._handles import (
    CN_HUB,
    SEGMENT,
    Handle,
    HfHandle,
    HttpHandle,
    KaggleHandle,
    LocalHandle,
    StoreHandle,
    TfhubHandle,
    safe_key,
)

__all__ = ["SCHEMES", "Scheme", "kaggle_handle_in", "kaggle_identity", "parse_handle"]

_TFHUB_HOSTS = ("tfhub.dev", "www.tfhub.dev")
_KAGGLE_HOSTS = ("www.kaggle.com", "kaggle.com")


@dataclass(frozen=True)
class Scheme:
    """One accepted handle form: whether it claims a string, and how to parse it."""

    name: str
    forms: tuple[str, ...]
    claims: Callable[[str], bool] = field(repr=False)
    parse: Callable[[str], Handle] = field(repr=False)


def _fail(text: str, expected: str, fix: str) -> HandleError:
    return HandleError(
        f"Expected {expected}. Received: handle={text!r}. {fix}\n{_accepted_forms()}",
        handle=text,
    )


def _is_url(text: str) -> bool:
    return "://" in text


def _under(text: str, bases: tuple[str, ...]) -> str | None:
    """The part of URL ``text`` after one of ``bases`` (scheme-insensitive), else None."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        return None
    for base in bases:
        b = urlsplit(base)
        base_path = b.path.rstrip("/")
        if parts.netloc.lower() == b.netloc.lower() and (
            parts.path == base_path or parts.path.startswith(base_path + "/")
        ):
            return parts.path[len(base_path) :].strip("/")
    return None


def _tfhub_bases() -> tuple[str, ...]:
    return (config.tfhub_endpoint(), *(f"https://{h}" for h in _TFHUB_HOSTS), CN_HUB)


def _kaggle_bases() -> tuple[str, ...]:
    return (config.kaggle_endpoint(), *(f"https://{h}" for h in _KAGGLE_HOSTS))


# local -----------------------------------------------------------------------------------


def _claims_local(text: str) -> bool:
    return not _is_url(text) or text.startswith("file://")


def _parse_local(text: str) -> LocalHandle:
    if text.startswith("file://"):
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise _fail(text, "a file:// URL on this machine", "Use file:///absolute/path.")
        raw = unquote(parts.path)
    else:
        raw = text
    if not raw.strip():
        raise _fail(text, "a non-empty handle", "Pass a path or a URL.")
    return LocalHandle(Path(raw).expanduser().absolute(), given=text)


# tfhub.dev -------------------------------------------------------------------------------


def _claims_tfhub(text: str) -> bool:
    return _under(text, _tfhub_bases()) is not None


def _parse_tfhub(text: str) -> TfhubHandle:
    rest = _under(text, _tfhub_bases()) or ""
    segments = rest.split("/")
    if len(segments) < 3 or not segments[-1].isdigit() or not all(segments):
        raise _fail(
            text,
            "a tfhub.dev handle with a publisher, a name and a version number",
            "For example https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5.",
        )
    cn = _under(text, (CN_HUB,)) is not None and _under(text, (config.tfhub_endpoint(),)) is None
    name = segments[:-1]
    # Plain names stay as they are (the URL needs them; the key shortens long ones).
    path = "/".join(name) if all(SEGMENT.fullmatch(n) for n in name) else safe_key(*name)
    return TfhubHandle(f"{path}/{int(segments[-1])}", "cn" if cn else "")


# kaggle ----------------------------------------------------------------------------------

_KAGGLE_LONG = ("frameworks", "variations", "versions")


def kaggle_identity(segments: list[str]) -> KaggleHandle | None:
    """A Kaggle handle from path segments after ``/models/``, short or long form, else None.

    Short: ``owner/model/framework/variation[/version]``. Long, as kaggle.com redirects
    show it: ``owner/model/frameworks/<f>/variations/<v>[/versions/<n>]``.
    """
    segments = [s for s in segments if s]
    if len(segments) >= 6 and segments[2] == "frameworks" and segments[4] == "variations":
        short = [segments[0], segments[1], segments[3], segments[5]]
        if len(segments) == 8 and segments[6] == "versions":
            short.append(segments[7])
        elif len(segments) != 6:
            return None
        segments = short
    if len(segments) not in (4, 5) or not all(SEGMENT.fullmatch(s) for s in segments):
        return None
    version: int | None = None
    if len(segments) == 5:
        if not segments[4].isdigit() or int(segments[4]) < 1:
            return None
        version = int(segments[4])
    owner, model, framework, variation = segments[:4]
    return KaggleHandle(owner, model, framework, variation, version)


def kaggle_handle_in(url: str) -> KaggleHandle | None:
    """The versioned Kaggle model a URL names (as redirects show it), else None."""
    rest = _under(url, _kaggle_bases())
    if rest is None or not rest.startswith("models/"):
        return None
    handle = kaggle_identity(rest.split("/")[1:])
    return handle if handle is not None and handle.version is not None else None


def _claims_kaggle(text: str) -> bool:
    if text.startswith("kaggle://"):
        return True
    rest = _under(text, _kaggle_bases())
    return rest is not None and (rest == "models" or rest.startswith("models/"))


def _parse_kaggle(text: str) -> KaggleHandle:
    if text.startswith("kaggle://"):
        segments = text[len("kaggle://") :].strip("/").split("/")
    else:
        segments = (_under(text, _kaggle_bases()) or "").split("/")[1:]
    handle = kaggle_identity(segments)
    if handle is None:
        raise _fail(
            text,
            "a Kaggle model as <owner>/<model>/<framework>/<variation>[/<version>], "
            "the version a whole number >= 1",
            "For example kaggle://google/mobilenet-v2/tensorFlow2/100-224-feature-vector/2.",
        )
    return handle


# http ------------------------------------------------------------------------------------


def _claims_http(text: str) -> bool:
    return (
        urlsplit(text).scheme in ("http", "https")
        and not _claims_tfhub(text)
        and not _claims_kaggle(text)
    )


def _parse_http(text: str) -> HttpHandle:
    parts = urlsplit(text)
    if not parts.netloc:
        raise _fail(text, "an http(s) URL with a host", "Write it as https://host/path.")
    return HttpHandle(text)


# object stores -----------------------------------------------------------------------------


def _claims_store(text: str) -> bool:
    return text.startswith(("gs://", "s3://"))


def _parse_store(text: str) -> StoreHandle:
    protocol, rest = text.split("://", 1)
    bucket, _, path = rest.partition("/")
    if not bucket:
        raise _fail(text, f"{protocol}://<bucket>/<path>", "Add the bucket name.")
    return StoreHandle(protocol, bucket, path.strip("/"))


# hugging face ------------------------------------------------------------------------------


def _claims_hf(text: str) -> bool:
    return text.startswith("hf://")


def _parse_hf(text: str) -> HfHandle:
    segments = text[len("hf://") :].strip("/").split("/")
    if len(segments) < 2 or not segments[0] or not segments[1]:
        raise _fail(
            text,
            "hf://<org>/<repo>[@<revision>][/<subfolder>]",
            "For example hf://google/bert-base@main/tf_model.",
        )
    repo, _, revision = segments[1].partition("@")
    if not repo or not all(SEGMENT.fullmatch(s) for s in (segments[0], repo)):
        raise _fail(text, "an <org>/<repo> made of letters, digits, '.', '_' or '-'", "")
    return HfHandle(f"{segments[0]}/{repo}", unquote(revision) or None, "/".join(segments[2:]))


#: Every accepted form, in order. A string must be claimed by exactly one of them.
SCHEMES: tuple[Scheme, ...] = (
    Scheme(
        "local",
        ("/path/to/model_dir", "./model.tar.gz (or .tgz, .zip)", "file:///path/to/model_dir"),
        _claims_local,
        _parse_local,
    ),
    Scheme(
        "tfhub",
        (
            "https://tfhub.dev/<publisher>/<name>/<version>",
            "https://hub.tensorflow.google.cn/<publisher>/<name>/<version>",
        ),
        _claims_tfhub,
        _parse_tfhub,
    ),
    Scheme(
        "kaggle",
        (
            "https://www.kaggle.com/models/<owner>/<model>/<framework>/<variation>/<version>",
            "kaggle://<owner>/<model>/<framework>/<variation>[/<version>]",
        ),
        _claims_kaggle,
        _parse_kaggle,
    ),
    Scheme(
        "http",
        ("https://<host>/<path> (an archive, or a server speaking ?tf-hub-format=compressed)",),
        _claims_http,
        _parse_http,
    ),
    Scheme("store", ("gs://<bucket>/<path>", "s3://<bucket>/<path>"), _claims_store, _parse_store),
    Scheme("hf", ("hf://<org>/<repo>[@<revision>][/<subfolder>]",), _claims_hf, _parse_hf),
)


def _accepted_forms() -> str:
    lines = [f"  {s.name:<7}{form}" for s in SCHEMES for form in s.forms]
    return "Accepted forms:\n" + "\n".join(lines)


def parse_handle(handle: str | Handle) -> Handle:
    """Parse a handle string into its frozen dataclass.

    Args:
        handle: a model handle in one of the forms listed in this module's docstring,
            or an already parsed handle (returned unchanged).

    Returns:
        A :class:`LocalHandle`, :class:`TfhubHandle`, :class:`KaggleHandle`,
        :class:`HttpHandle`, :class:`StoreHandle` or :class:`HfHandle`.

    Raises:
        HandleError: ``handle`` fits no accepted form, or more than one (for example
            when the tfhub and Kaggle endpoints are set to the same URL); the message
            lists every accepted form.

    Example:
        >>> parse_handle("https://tfhub.dev/google/nnlm-en-dim128/2")
        TfhubHandle(path='google/nnlm-en-dim128/2')
    """
    if not isinstance(handle, str):
        if isinstance(
            handle, LocalHandle | TfhubHandle | KaggleHandle | HttpHandle | StoreHandle | HfHandle
        ):
            return handle
        raise HandleError(
            f"Expected a handle string. Received: handle={handle!r} of type "
            f"{type(handle).__name__} (Expected a string, got {handle!r}). Pass a path or "
            f"URL as str.\n{_accepted_forms()}",
            handle=repr(handle),
        )
    text = handle.strip()
    if "://" in text and not text.startswith("file://"):
        # Remote handles do not depend on the working folder: parse each spelling once
        # per endpoint setting (a cached resolve then spends no time here).
        return _parse_remote(text, config.tfhub_endpoint(), config.kaggle_endpoint())
    return _parse_text(text)


@functools.lru_cache(maxsize=512)
def _parse_remote(text: str, tfhub_endpoint: str, kaggle_endpoint: str) -> Handle:
    return _parse_text(text)


def _parse_text(text: str) -> Handle:
    claimed = [scheme for scheme in SCHEMES if scheme.claims(text)]
    if not claimed:
        scheme = urlsplit(text).scheme
        raise _fail(text, "a handle in one of the accepted forms", f"Unknown scheme {scheme!r}.")
    if len(claimed) > 1:
        names = " and ".join(s.name for s in claimed)
        raise HandleError(
            f"Expected a handle that fits exactly one form. Received: handle={text!r}, "
            f"which fits both {names} (are HUBLAYER_TFHUB_ENDPOINT and "
            "HUBLAYER_KAGGLE_ENDPOINT the same URL?). Write it unambiguously, as "
            "kaggle://<owner>/<model>/<framework>/<variation>/<version> or as "
            f"https://tfhub.dev/<publisher>/<name>/<version>, or give the endpoints "
            f"different paths.\n{_accepted_forms()}",
            handle=text,
        )
    return claimed[0].parse(text)
