"""Keras's private APIs that hublayer uses, each guarded by the releases it was written for.

Nothing else in hublayer imports ``keras.src`` or calls a private Keras method. Each use,
what it is for, and what happens on a Keras outside :data:`SUPPORTED` (3.x)::

    API                                     for                          outside 3.x
    --------------------------------------  ---------------------------  ----------------------
    keras.src.saving.serialization_lib      a KerasLayer rebuilt by      UnsupportedVersionError
      .in_safe_mode                         load_model(safe_mode=False)  (no public API reads
                                            follows that choice          the scope)
    Layer._get_own_losses (overridden,      a SavedModel's               UnsupportedVersionError
      and read by Layer.losses)             regularization losses in     when the layer class
                                            model.losses before a call   is defined
    Layer._tracker.unlock()/.lock()         a built layer taking new     UnsupportedVersionError
                                            state (a SeedGenerator for
                                            a model's random ops)

There is no public fallback for any of them: reading the environment instead of the load's
``safe_mode`` would refuse models the caller trusted, and an override Keras no longer
reads would drop the regularization losses without a word. Inside the range a missing
name raises ``UnsupportedVersionError`` too; ``tests/test_foreign_apis.py`` checks both
against the installed Keras.

Example:
    >>> in_load_scope_safe_mode() is None  # not inside keras.saving.load_model
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from hublayer._foreign import ANY_MINOR, release, span, within
from hublayer.errors import UnsupportedVersionError

__all__ = [
    "SUPPORTED",
    "in_load_scope_safe_mode",
    "own_losses_hook",
    "parent_own_losses",
    "tracking_unlocked",
]

#: The Keras releases (major, minor) these adapters were written and tested for: 3.x.
SUPPORTED: tuple[tuple[int, int], tuple[int, int]] = ((3, 0), (3, ANY_MINOR))
_HOOK = "_get_own_losses"
_F = TypeVar("_F", bound=Callable[..., Any])


def _version() -> str:
    import keras

    return str(keras.__version__)


def _check(api: str) -> None:
    """Raise unless the installed Keras is in :data:`SUPPORTED`."""
    if not within(release(_version()), *SUPPORTED):
        raise _error(api, "outside the range")


def _error(api: str, problem: str) -> UnsupportedVersionError:
    version = _version()
    return UnsupportedVersionError(
        f"Expected Keras {span(*SUPPORTED)}, whose private {api} hublayer uses. Received: "
        f'Keras {version}, {problem}. Install Keras 3 (pip install "keras>=3,<4"), or a '
        f"hublayer release that supports Keras {version}.",
        package="keras",
        version=version,
        supported=span(*SUPPORTED),
        api=api,
    )


def in_load_scope_safe_mode() -> bool | None:
    """The ``safe_mode`` of the ``keras.saving.load_model`` call now rebuilding objects.

    Returns:
        False inside ``load_model(..., safe_mode=False)``, True inside a safe load, None
        outside any load.

    Raises:
        UnsupportedVersionError: a Keras outside 3.x, or one without ``in_safe_mode``.
    """
    api = "keras.src.saving.serialization_lib.in_safe_mode"
    _check(api)
    try:
        from keras.src.saving.serialization_lib import in_safe_mode
    except ImportError as error:
        raise _error(api, f"which lacks it ({error})") from None
    value = in_safe_mode()
    return None if value is None else bool(value)


def own_losses_hook(method: _F) -> _F:
    """Mark a ``keras.Layer`` subclass's ``_get_own_losses`` override, checking that this
    Keras has the hook and reads it in ``Layer.losses`` (else the override would be
    ignored, and its losses lost, in silence).

    Raises:
        UnsupportedVersionError: when the class is defined, on a Keras outside 3.x or
            one whose ``Layer.losses`` no longer reads ``_get_own_losses``.
    """
    import keras

    api = f"Layer.{_HOOK} hook"
    _check(api)
    if method.__name__ != _HOOK:
        raise TypeError(f"Expected a method named {_HOOK}. Received: {method.__name__}.")
    losses = getattr(keras.Layer, "losses", None)
    reads = getattr(getattr(losses, "fget", None), "__code__", None)
    if not callable(getattr(keras.Layer, _HOOK, None)) or _HOOK not in (
        reads.co_names if reads else ()
    ):
        raise _error(api, f"whose Layer.losses does not read Layer.{_HOOK}")
    return method


def parent_own_losses(parent: Any) -> list[Any]:
    """What Keras's own ``_get_own_losses`` returns, from inside an override.

    Args:
        parent: ``super()`` inside the override.
    """
    return list(getattr(parent, _HOOK)())


@contextlib.contextmanager
def tracking_unlocked(layer: Any) -> Iterator[None]:
    """Let a built layer take new state (variables, a ``SeedGenerator``) inside the block.

    Keras locks a layer's state tracker when the layer is built; state added later
    raises "You cannot add new elements of state". Inside this block it is tracked as
    if it had been created in ``build``.

    Raises:
        UnsupportedVersionError: a Keras outside 3.x, or a layer without Keras's tracker.
    """
    api = "Layer._tracker.unlock/lock"
    _check(api)
    tracker: Any = getattr(layer, "_tracker", None)
    if not all(callable(getattr(tracker, name, None)) for name in ("unlock", "lock")):
        raise _error(api, f"whose {type(layer).__name__} has no such tracker")
    tracker.unlock()
    try:
        yield
    finally:
        tracker.lock()
