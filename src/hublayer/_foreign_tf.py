"""TensorFlow's private APIs that hublayer uses, each guarded by the releases it was written for.

Nothing else in hublayer imports ``tensorflow.python``. Each use, what it is for, and
what happens on a TensorFlow outside :data:`SUPPORTED` (2.16 to 2.21)::

    API                                       for                      outside the range
    ----------------------------------------  -----------------------  -----------------------
    function_type_utils                       calling a restored       the public call
      .canonicalize_function_inputs;          __call__'s trace         fn(*args, **kwargs)
    function_deserialization                  directly (layers'        (slower first call),
      ._concrete_function_callable_with,      _fastcall)               logged once as a WARNING
      ._call_concrete_function;
    RestoredFunction._function_type,
      ._default_values, ._is_pure
    pywrap_tf_session.TF_GetAllOpList         every registered op def  UnsupportedVersionError
                                              (the scan's op tables)   (no public API has them)

Inside the range a missing name is a break of this promise, and raises
``UnsupportedVersionError`` too; ``tests/test_foreign_apis.py`` checks every one
against the installed TensorFlow.

Example:
    >>> import tensorflow as tf
    >>> picker = restored_trace_picker()
    >>> picker is not None  # TensorFlow 2.16 to 2.21
    True
    >>> "MatMul" in registered_op_defs()
    True
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hublayer._foreign import release, span, within
from hublayer.errors import UnsupportedVersionError

__all__ = ["SUPPORTED", "TracePicker", "registered_op_defs", "restored_trace_picker"]

#: The TensorFlow releases (major, minor) these adapters were written and tested for.
SUPPORTED: tuple[tuple[int, int], tuple[int, int]] = ((2, 16), (2, 21))
_log = logging.getLogger("hublayer")


def _version() -> str:
    import tensorflow as tf

    return str(tf.__version__)


def _supported() -> bool:
    return within(release(_version()), *SUPPORTED)


def _error(api: str, problem: str) -> UnsupportedVersionError:
    version = _version()
    return UnsupportedVersionError(
        f"Expected TensorFlow {span(*SUPPORTED)}, whose private {api} hublayer uses. "
        f"Received: TensorFlow {version}, {problem}. Install a TensorFlow in that range "
        '(pip install "tensorflow>=2.16,<2.22"), or a hublayer release that supports '
        f"TensorFlow {version}.",
        package="tensorflow",
        version=version,
        supported=span(*SUPPORTED),
        api=api,
    )


@dataclass(frozen=True)
class TracePicker:
    """TensorFlow's own steps for calling a restored function's saved traces.

    Attributes:
        bind: ``bind(restored, args, kwargs) -> (args, kwargs)``, the inputs as the
            restored function's wrapper binds them (defaults filled in), or None when
            TensorFlow cannot bind them (calling the function then says why).
        callable_with: ``callable_with(trace, inputs) -> bool``, whether a concrete
            trace takes ``inputs`` as they are (no conversion).
        call: ``call(trace, inputs)``, that trace called as the wrapper calls it.
    """

    bind: Callable[
        [Any, tuple[Any, ...], dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]] | None
    ]
    callable_with: Callable[[Any, tuple[Any, ...]], bool]
    call: Callable[[Any, tuple[Any, ...]], Any]


_PICKER_API = (
    "function_type_utils.canonicalize_function_inputs, function_deserialization."
    "_concrete_function_callable_with/_call_concrete_function and RestoredFunction."
    "_function_type/_default_values/_is_pure"
)


@functools.lru_cache(maxsize=1)
def restored_trace_picker() -> TracePicker | None:
    """TensorFlow's binder, trace matcher and trace caller for restored functions.

    Returns:
        A :class:`TracePicker`; None on a TensorFlow outside :data:`SUPPORTED`, where the
        caller must take the public path (call the function), as a WARNING says once.

    Raises:
        UnsupportedVersionError: a TensorFlow inside the range that lacks one of them.
    """
    if not _supported():
        _log.warning(
            "TensorFlow %s is outside %s, the releases hublayer's direct call of a restored "
            "function was written for: restored functions are called through TensorFlow's "
            "public dispatch instead (same results, a slower first call).",
            _version(),
            span(*SUPPORTED),
        )
        return None
    try:
        from tensorflow.python.eager.polymorphic_function import function_type_utils
        from tensorflow.python.saved_model import function_deserialization as fd

        canonicalize = function_type_utils.canonicalize_function_inputs
        matches = fd._concrete_function_callable_with
        call = fd._call_concrete_function
    except (ImportError, AttributeError) as error:
        raise _error(_PICKER_API, f"which lacks one of them ({error})") from None

    def bind(
        restored: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        try:
            function_type = restored._function_type
            defaults = restored._default_values
            pure = restored._is_pure
        except AttributeError as error:
            raise _error(_PICKER_API, f"whose restored functions lack one ({error})") from None
        try:
            bound = canonicalize(args, kwargs, function_type, defaults, pure)
        except Exception:  # the function's own call raises it, worded
            return None
        return tuple(bound.args), dict(bound.kwargs)

    return TracePicker(
        bind=bind,
        callable_with=lambda trace, inputs: bool(matches(trace, inputs, False)),
        call=call,
    )


def registered_op_defs() -> dict[str, Any]:
    """Every op the running TensorFlow registers now, as ``name -> OpDef`` (with attr types).

    Read anew on each call: importing an op library (``tensorflow_text``) adds ops.

    Raises:
        UnsupportedVersionError: a TensorFlow outside :data:`SUPPORTED` (no public API
            lists op defs), or one inside it that lacks ``TF_GetAllOpList``.
    """
    api = "pywrap_tf_session.TF_GetAllOpList"
    if not _supported():
        raise _error(api, "outside the range, and no public API lists every op def")
    try:
        from tensorflow.core.framework import op_def_pb2
        from tensorflow.python.client import pywrap_tf_session as c_api

        buffer = c_api.TF_GetAllOpList()
        try:
            data = c_api.TF_GetBuffer(buffer)
        finally:
            c_api.TF_DeleteBuffer(buffer)
    except (ImportError, AttributeError) as error:
        raise _error(api, f"which lacks it ({error})") from None
    return {op.name: op for op in op_def_pb2.OpList.FromString(data).op}
