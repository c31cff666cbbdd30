"""tf2jax's private API that hublayer uses, guarded by the releases it was written for.

tf2jax keeps its op table private. The JAX backend asks it which ops of a model it
cannot convert *before* converting, so the error names every missing op at once::

    API                                         for                       outside 0.3
    ------------------------------------------  ------------------------  -----------------------
    tf2jax._src.ops.get_unsupported_operations  the ops tf2jax cannot     UnsupportedVersionError
                                                convert, listed up front  (no public API has them)

Inside the range a missing name raises ``UnsupportedVersionError`` too;
``tests/test_foreign_apis.py`` checks it against the installed tf2jax.

Example:
    >>> sorted(unsupported_operations(["MatMul", "NoSuchOp"]))  # doctest: +SKIP
    ['NoSuchOp']
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from hublayer._foreign import release, span, within
from hublayer.errors import UnsupportedVersionError

__all__ = ["SUPPORTED", "unsupported_operations"]

#: The tf2jax releases (major, minor) this adapter was written and tested for.
SUPPORTED: tuple[tuple[int, int], tuple[int, int]] = ((0, 3), (0, 3))
_API = "tf2jax._src.ops.get_unsupported_operations"


def _error(version: str, problem: str) -> UnsupportedVersionError:
    return UnsupportedVersionError(
        f"Expected tf2jax {span(*SUPPORTED)}, whose private {_API} hublayer uses. Received: "
        f'tf2jax {version}, {problem}. Install it (pip install "tf2jax>=0.3,<0.4"), or a '
        f"hublayer release that supports tf2jax {version}.",
        package="tf2jax",
        version=version,
        supported=span(*SUPPORTED),
        api=_API,
    )


def unsupported_operations(op_names: Iterable[str]) -> set[str]:
    """The names among ``op_names`` that tf2jax has no JAX version of.

    Raises:
        UnsupportedVersionError: a tf2jax outside 0.3, or one without the function.
        ImportError: tf2jax is not installed (the caller names the extra).
    """
    tf2jax = importlib.import_module("tf2jax")
    version = str(getattr(tf2jax, "__version__", "unknown"))
    if not within(release(version), *SUPPORTED):
        raise _error(version, "outside the range")
    try:
        table = importlib.import_module("tf2jax._src.ops").get_unsupported_operations
    except (ImportError, AttributeError) as error:
        raise _error(version, f"which lacks it ({error})") from None
    return set(table(sorted(op_names)))
