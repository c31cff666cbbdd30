"""The one description of a model input or output that every package shares.

``models.inspect`` and ``layers.KerasLayer`` produce :class:`TensorInfo` tuples; ``records``
consumes them to build a pipeline that matches the model, without importing Keras or
loading the model. It is plain data: no TensorFlow import.

Contract: any object with an ``input_specs`` attribute (a ``ModelInfo`` from
``hublayer.inspect``, a ``KerasLayer``) or a sequence of ``TensorInfo`` is a model input
spec; :func:`input_specs_of` turns any of them into a tuple.

Example:
    >>> spec = TensorInfo("images", "float32", (None, 224, 224, 3), value_range=(0.0, 1.0))
    >>> spec.rank, spec.is_image
    (4, True)
    >>> input_specs_of([spec])[0].name
    'images'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["TensorInfo", "input_specs_of"]


@dataclass(frozen=True)
class TensorInfo:
    """Name, dtype and shape of one model input or output.

    Args:
        name: the input's key in a signature (``"inputs"`` for a single positional input).
        dtype: a TensorFlow dtype name: ``"float32"``, ``"int32"``, ``"string"``...
        shape: the full shape, batch dimension first; ``None`` marks an unknown size.
        value_range: for image inputs, the value range the model expects, when known.
    """

    name: str
    dtype: str
    shape: tuple[int | None, ...]
    value_range: tuple[float, float] | None = None

    @property
    def rank(self) -> int:
        """Number of dimensions, batch included."""
        return len(self.shape)

    @property
    def is_image(self) -> bool:
        """True for a floating ``[B, H, W, C]`` input with 1, 3 or 4 channels (or unknown C)."""
        return (
            self.rank == 4
            and self.dtype.startswith(("float", "bfloat", "uint8"))
            and self.shape[-1] in (1, 3, 4, None)
        )

    def __str__(self) -> str:
        dims = ", ".join("None" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype}[{dims}]"


def input_specs_of(model_spec: Any) -> tuple[TensorInfo, ...]:
    """Normalize a model input spec to a tuple of :class:`TensorInfo`.

    Args:
        model_spec: an object with an ``input_specs`` attribute, a single ``TensorInfo``,
            or a sequence of them.

    Raises:
        TypeError: for anything else, naming what was received.
    """
    specs = getattr(model_spec, "input_specs", model_spec)
    if isinstance(specs, TensorInfo):
        return (specs,)
    if isinstance(specs, Sequence) and all(isinstance(s, TensorInfo) for s in specs):
        return tuple(specs)
    raise TypeError(
        "Expected a model input spec: the result of hublayer.inspect(...), a "
        "hublayer.KerasLayer, or a sequence of TensorInfo. "
        f"Received: model_spec={model_spec!r}."
    )
