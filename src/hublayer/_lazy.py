"""Lazy package faces: a package's public names are imported on first use.

Each package ``__init__`` keeps a table from name to the private module that defines it,
and gets its module ``__getattr__`` and ``__dir__`` from :func:`lazy_names`, so
``import hublayer.handles`` stays light (no TensorFlow) until a name is used.

Example:
    >>> _LAZY = {"dumps": "json"}  # doctest: +SKIP
    >>> __getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str, table: Mapping[str, str], names: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        table: public name -> the module that defines it, relative to ``package``
            (``"._resolve"``) or absolute.
        names: the package's ``__all__``, listed by ``dir()``.

    Returns:
        ``(__getattr__, __dir__)``: the first imports the name's module once and keeps
        the value in the package's globals; an unknown name raises ``AttributeError``.
    """
    namespace = vars(sys.modules[package])
    listed = frozenset(names)

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module hook's own name
        try:
            module = importlib.import_module(table[name], package)
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:  # noqa: N807 - the module hook's own name
        return sorted(set(namespace) | listed)

    return __getattr__, __dir__
