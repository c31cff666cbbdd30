"""Load, inspect and export models: TF2 SavedModels, TF1-style SavedModels, ``.keras`` files.

- :func:`export_saved_model`: write a Keras 3 model as a TF2 Reusable SavedModel.

Example:
    >>> import hublayer
    >>> hublayer.models.export_saved_model  # doctest: +ELLIPSIS
    <function export_saved_model at ...>
"""

from __future__ import annotations

from hublayer.models._export import export_saved_model

__all__ = ["export_saved_model"]
