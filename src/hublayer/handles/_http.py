"""HTTP for downloads: the client hublayer uses, and when and how long to retry.

- :func:`new_client`: hublayer's timeouts, identity encoding, its User-Agent, and TLS
  checks (off only with ``TFHUB_DISABLE_CERT_VALIDATION=true``, with a warning).
- :data:`RETRY_STATUSES` and :data:`RETRY_ERRORS`: what is worth another attempt;
  :func:`backoff`: how long to wait first (``Retry-After``, else jittered 2^n).
- :func:`status_error`: the :class:`~hublayer.errors.DownloadError` for any other status.

Example:
    >>> 503 in RETRY_STATUSES, 404 in RETRY_STATUSES
    (True, False)
"""

from __future__ import annotations

import email.utils
import logging
import random
import time

import httpx

from hublayer import config
from hublayer._version import __version__
from hublayer.errors import DownloadError

__all__ = ["RETRY_ERRORS", "RETRY_STATUSES", "backoff", "new_client", "status_error"]

#: HTTP statuses worth another attempt: timeouts, rate limits and server-side errors.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Transport errors worth another attempt: timeouts, resets, refused or cut connections.
RETRY_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
_BACKOFF_BASE = 0.25
_BACKOFF_CAP = 10.0
_RETRY_AFTER_CAP = 60.0


def new_client() -> httpx.Client:
    """An HTTP client with hublayer's timeouts, redirects and identity encoding.

    With ``TFHUB_DISABLE_CERT_VALIDATION=true`` it skips TLS certificate checks, and
    logs a warning each time such a client is made.
    """
    timeout = config.download_timeout()
    verify = not config.disable_cert_validation()
    if not verify:
        logging.getLogger("hublayer.handles").warning(
            "TLS certificate validation is off for downloads (TFHUB_DISABLE_CERT_VALIDATION"
            "=true): use it only with servers you trust, and unset it when done."
        )
    return httpx.Client(
        follow_redirects=False,  # RemoteFile follows them itself, to see each hop
        timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
        headers={"User-Agent": f"hublayer/{__version__}", "Accept-Encoding": "identity"},
        verify=verify,
    )


def backoff(attempt: int, response: httpx.Response | None) -> float:
    """Seconds to wait before retry ``attempt + 1``: ``Retry-After``, else jittered 2^n."""
    if response is not None and (after := response.headers.get("retry-after")):
        try:
            return min(float(after), _RETRY_AFTER_CAP)
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(after).timestamp()
            return min(max(when - time.time(), 0.0), _RETRY_AFTER_CAP)
        except (ValueError, TypeError):
            pass
    return min(_BACKOFF_CAP, _BACKOFF_BASE * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def status_error(url: str, response: httpx.Response, handle: str | None) -> DownloadError:
    """The error for a status that is neither success nor worth a retry, with its fix."""
    status = response.status_code
    if status in (401, 403):
        fix = (
            "The model may need you to accept its license on the website, or credentials; "
            "check the handle and your access."
        )
    elif status == 404:
        fix = "Check the handle's spelling and version."
    else:
        fix = "Check the handle, or try again later."
    return DownloadError(
        f"Expected {url} to serve a model. Received: HTTP {status} {response.reason_phrase}"
        f" (handle={handle!r}). {fix} Set HUBLAYER_OFFLINE=1 to use only cached models.",
        url=url,
        status=status,
        handle=handle,
    )
