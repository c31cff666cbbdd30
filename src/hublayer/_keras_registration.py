"""Register hublayer's Keras classes when Keras is imported, without importing it ourselves.

``keras.models.load_model("m.keras")`` finds ``hublayer>KerasLayer`` only if the class
is registered in the process, and Keras does not import third-party modules named in a
config. Importing Keras from ``import hublayer`` would make every CLI command pay for a
TensorFlow import, so instead:

- if Keras is already imported, the layers are registered now;
- otherwise a one-shot import hook waits for ``keras`` to finish importing, then
  registers them, and removes itself.

Either way ``import hublayer`` followed (or preceded) by ``import keras`` is all a user
needs for ``keras.models.load_model`` to work without ``custom_objects``. So every Keras
class a saved file may name (``KerasLayer``, ``TextChain``, ``BackboneCall``) lives in
``hublayer.layers``.

This module (floor 1) names ``hublayer.layers`` (floor 4) by string
(:data:`_REGISTERING_MODULE`) and imports it only once Keras is imported: a deliberate
upward edge, allowed by name in ``tests/test_import_graph.py`` (``BY_NAME_UPWARD``).

Example:
    >>> import hublayer, keras  # any order
    >>> keras.saving.get_registered_object("hublayer>KerasLayer") is not None
    True
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["install"]

_REGISTERING_MODULE = "hublayer.layers"


def _register() -> None:
    try:
        importlib.import_module(_REGISTERING_MODULE)
    except Exception as error:  # never break the user's `import keras`
        warnings.warn(
            f"hublayer could not register its Keras layers ({error!r}); "
            f"`import {_REGISTERING_MODULE}` before keras.models.load_model.",
            RuntimeWarning,
            stacklevel=2,
        )


class _LoaderThenRegister(importlib.abc.Loader):
    """Runs the real ``keras`` loader, then registers hublayer's layers."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _uninstall()
        _register()

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package...
        return getattr(self._loader, name)


class _KerasImportHook(importlib.abc.MetaPathFinder):
    """A meta-path finder that only wraps the loader of the top-level ``keras`` package."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "keras":
            return None
        # Stay installed until Keras really executes: ``import tensorflow`` (and
        # ``importlib.util.find_spec``) probe for ``keras`` without importing it, and a
        # hook that removed itself here left the later ``import keras`` unregistered.
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _LoaderThenRegister(spec.loader)
        return spec


def _uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _KerasImportHook)]


def install() -> None:
    """Register the layers now if Keras is loaded, else as soon as it is imported."""
    if "keras" in sys.modules:
        _register()
    elif not any(isinstance(f, _KerasImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _KerasImportHook())
