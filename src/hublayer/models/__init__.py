"""Load, inspect and export models: TF2 SavedModels, TF1-style SavedModels, ``.keras`` files.

- :func:`export_saved_model`: write a Keras 3 model as a TF2 Reusable SavedModel.
- :func:`inspect`: describe a model as a :class:`ModelInfo` (signatures, specs, sizes).
- :func:`load`: load a model handle, like ``tensorflow_hub.load``.

Example:
    >>> import hublayer
    >>> from hublayer import testing
    >>> info = hublayer.models.inspect(testing.text_embedding("/tmp/nnlm"))
    >>> [str(spec) for spec in info.input_specs]
    ['sentences: string[None]']
"""

from __future__ import annotations

from hublayer.models._export import export_saved_model
from hublayer.models._inspect import ModelInfo, SignatureInfo, inspect

# For `hublayer.layers` (the floor above), not part of the public API.
from hublayer.models._load import is_hub_module_v1 as is_hub_module_v1
from hublayer.models._load import load
from hublayer.models._load import load_path as load_path
from hublayer.models._load import resolve_handle as resolve_handle

__all__ = ["ModelInfo", "SignatureInfo", "export_saved_model", "inspect", "load"]
