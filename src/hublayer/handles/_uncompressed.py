"""``TFHUB_MODEL_LOAD_FORMAT=UNCOMPRESSED``: ask a tf-hub server where the model's folder is.

tensorflow_hub's protocol: request ``<url>?tf-hub-format=uncompressed``; the server
answers ``303 See Other`` naming a ``gs://`` folder (in ``Location``, and in the body),
which is then read in place through ``tf.io.gfile``, with no copy and no cache entry.
Plain redirects (301, 302, 307, 308, or a 303 to another http(s) URL) are followed on
the way. Anything else is a ``ValueError`` (:class:`~hublayer.errors.InvalidModelError`),
worded as tensorflow_hub words it, on the message's first line: a 200 or a 404 is
"Expected 303 See other HTTP response but received code <code>", and a 303 without a
``gs://`` folder is "Expected server to return a GCS location but received <answer>"
(the body, else the ``Location``, unquoted); the URL, the handle and the fix follow.

Example:
    >>> from hublayer.handles._handles import TfhubHandle
    >>> uncompressed_url(TfhubHandle("google/nnlm-en-dim128/2"))
    'https://tfhub.dev/google/nnlm-en-dim128/2?tf-hub-format=uncompressed'
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from hublayer import config
from hublayer.errors import DownloadError, InvalidModelError
from hublayer.handles._handles import Handle, HttpHandle, KaggleHandle, TfhubHandle

if TYPE_CHECKING:
    import httpx

__all__ = ["gcs_location", "reads_in_place", "uncompressed_url"]

_MAX_HOPS = 20
_FOLLOW = frozenset({301, 302, 303, 307, 308})


def reads_in_place(handle: Handle) -> bool:
    """Whether ``handle`` has an uncompressed form: tfhub.dev, Kaggle, non-archive URLs."""
    if isinstance(handle, TfhubHandle | KaggleHandle):
        return True
    return isinstance(handle, HttpHandle) and not handle.is_archive


def uncompressed_url(handle: TfhubHandle | KaggleHandle | HttpHandle) -> str:
    """The ``?tf-hub-format=uncompressed`` URL of ``handle`` (a Kaggle one needs a version)."""
    return handle.uncompressed_url()


def _unexpected(url: str, status: int, handle: str) -> InvalidModelError:
    return InvalidModelError(
        f"Expected 303 See other HTTP response but received code {status}\n(from {url}, "
        f"handle={handle!r}; TFHUB_MODEL_LOAD_FORMAT=UNCOMPRESSED asks the server for the "
        "model's gs:// folder). Check the handle, or unset TFHUB_MODEL_LOAD_FORMAT to "
        "download the compressed archive instead.",
        handle=handle,
        url=url,
        status=status,
    )


def _no_gcs(url: str, answer: str, handle: str) -> InvalidModelError:
    shown = answer[:200] or "an empty answer"
    return InvalidModelError(
        f"Expected server to return a GCS location but received {shown}\n(from {url}, "
        f"handle={handle!r}): the server answered 303 without a gs:// folder. Unset "
        "TFHUB_MODEL_LOAD_FORMAT to download the compressed archive instead.",
        handle=handle,
        url=url,
        status=303,
    )


def gcs_location(handle: TfhubHandle | KaggleHandle | HttpHandle, client: httpx.Client) -> str:
    """Ask the server for ``handle``'s ``gs://`` folder (tensorflow_hub's uncompressed format).

    Args:
        handle: a tfhub.dev, Kaggle (with a version) or non-archive http(s) handle.
        client: the HTTP client (redirects are followed here, one hop at a time).

    Returns:
        The ``gs://`` location, without a trailing slash.

    Raises:
        InvalidModelError: the server answered anything but a 303 naming a ``gs://``
            folder (a ``ValueError``, as in tensorflow_hub).
        DownloadError: the server could not be reached, or kept failing (5xx, 429).
    """
    import httpx

    from hublayer.handles._http import RETRY_ERRORS, RETRY_STATUSES, backoff

    shown = str(handle)
    url = uncompressed_url(handle)
    retries = config.download_retries()
    attempt = 0
    hops = 0
    while True:
        try:
            response = client.get(url, follow_redirects=False)
        except RETRY_ERRORS as error:
            attempt += 1
            if attempt >= retries:
                raise DownloadError(
                    f"Expected {url} to answer within {retries} attempts. Received: "
                    f"{type(error).__name__}: {error}. Try again later.",
                    url=url,
                    handle=shown,
                ) from error
            time.sleep(backoff(attempt, None))
            continue
        except httpx.HTTPError as error:
            raise DownloadError(
                f"Expected to reach {url}. Received: {type(error).__name__}: {error}. Check "
                "the handle and your network settings.",
                url=url,
                handle=shown,
            ) from error
        status = response.status_code
        if status in RETRY_STATUSES and attempt + 1 < retries:
            attempt += 1
            time.sleep(backoff(attempt, response))
            continue
        location = response.headers.get("location", "").strip()
        if status == 303:
            body = response.text.strip()
            for candidate in (location, body):
                if candidate.startswith("gs://"):
                    return candidate.rstrip("/")
        if status in _FOLLOW and location.startswith(("http://", "https://", "/")):
            hops += 1
            if hops > _MAX_HOPS:
                raise _unexpected(url, status, shown)
            url = urljoin(url, location)
            continue
        if status == 303:
            raise _no_gcs(url, response.text.strip() or location, shown)
        raise _unexpected(url, status, shown)
