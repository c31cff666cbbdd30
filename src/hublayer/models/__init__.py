"""Load, inspect, scan and export models: TF2 SavedModels, TF1-style SavedModels, ``.keras`` files.

- :func:`export_saved_model`: write a Keras 3 model as a TF2 Reusable SavedModel.
- :func:`inspect`: describe a model as a :class:`ModelInfo` (signatures, specs, sizes).
- :func:`load`: load a model handle, like ``tensorflow_hub.load``.
- :func:`scan`: judge a model's ops without running it (TF-free) as a :class:`ScanReport`.

Names load lazily, so ``hublayer.scan`` (and ``hublayer scan``) never imports TensorFlow.

Example:
    >>> import hublayer
    >>> from hublayer import testing
    >>> info = hublayer.models.inspect(testing.text_embedding("/tmp/nnlm"))
    >>> [str(spec) for spec in info.input_specs]
    ['sentences: string[None]']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hublayer._lazy import lazy_names

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from hublayer.models._declared_range import declare_ranges as declare_ranges
    from hublayer.models._export import export_saved_model
    from hublayer.models._inspect import inspect
    from hublayer.models._load import load
    from hublayer.models._load import load_path as load_path
    from hublayer.models._locate import is_hub_module_v1 as is_hub_module_v1
    from hublayer.models._locate import resolve_handle as resolve_handle
    from hublayer.models._model_info import ModelInfo, SignatureInfo
    from hublayer.models._op_libraries import library_ops as library_ops
    from hublayer.models._op_libraries import require_op_libraries as require_op_libraries
    from hublayer.models._scan import scan
    from hublayer.models._scan_report import Finding, ScanReport

__all__ = [
    "Finding",
    "ModelInfo",
    "ScanReport",
    "SignatureInfo",
    "export_saved_model",
    "inspect",
    "load",
    "load_keras_file",
    "scan",
]

# name -> private module that defines it
_LAZY: dict[str, str] = {
    "Finding": "._scan_report",
    "ModelInfo": "._model_info",
    "ScanReport": "._scan_report",
    "SignatureInfo": "._model_info",
    "export_saved_model": "._export",
    "inspect": "._inspect",
    "load": "._load",
    "load_keras_file": "._keras_file",
    "scan": "._scan",
    # For `hublayer.layers` (the floor above), not part of the public API.
    "declare_ranges": "._declared_range",
    "is_hub_module_v1": "._locate",
    "library_ops": "._op_libraries",
    "load_path": "._load",
    "require_op_libraries": "._op_libraries",
    "resolve_handle": "._locate",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
