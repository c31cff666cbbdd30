"""A SavedModel's ``regularization_losses``, seen by Keras 3 like weight regularizers.

Keras 3 collects weight regularizers at any time: ``model.losses`` calls the
``regularizer`` of every *trainable* weight. Losses added with ``add_loss`` inside ``call``
show only after a call, and stay there when ``trainable`` changes. So the layer hands
each of the model's zero-argument loss callables to one of its trainable variables as
that variable's ``regularizer``. Then:

- ``model.losses`` holds them before any call, once each, while the layer trains;
- setting ``layer.trainable = False`` (or a selection that leaves a variable out) removes
  them at once, because Keras skips non-trainable weights;
- ``fit`` counts each exactly once, like any weight regularizer.

Example:
    >>> import keras
    >>> v = keras.Variable(1.0)
    >>> attach([v], [True], [lambda: keras.ops.convert_to_tensor(0.5)])
    >>> float(v.regularizer(v))
    0.5
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras

__all__ = ["SavedModelLoss", "attach"]


class SavedModelLoss(keras.regularizers.Regularizer):
    """A weight regularizer that returns the sum of a SavedModel's loss callables.

    The weight it is attached to is ignored: the callables read the model's variables
    themselves.
    """

    def __init__(self, losses: Sequence[Callable[[], Any]]) -> None:
        self.losses = tuple(losses)

    def __call__(self, x: Any) -> Any:
        total = self.losses[0]()
        for loss in self.losses[1:]:
            total = total + loss()
        return total

    def get_config(self) -> dict[str, Any]:
        """Not serializable: the layer attaches it again when its model loads."""
        return {}


def attach(
    variables: Sequence[keras.Variable],
    selected: Sequence[bool],
    losses: Sequence[Callable[[], Any]],
) -> None:
    """Spread ``losses`` over the selected variables as their regularizers (one each).

    With more losses than selected variables, the last selected variable carries the
    rest. Earlier attachments are removed first, so calling this again after a change of
    ``trainable`` or of the selection moves them.

    Args:
        variables: the layer's variables.
        selected: which of them train.
        losses: the model's zero-argument loss callables.
    """
    for variable in variables:
        if isinstance(variable.regularizer, SavedModelLoss):
            variable.regularizer = None
    carriers = [v for v, s in zip(variables, selected, strict=True) if s]
    if not losses or not carriers:
        return
    for i, carrier in enumerate(carriers[: len(losses)]):
        last = i == len(losses) - 1 or i == len(carriers) - 1
        carrier.regularizer = SavedModelLoss(losses[i:] if last else losses[i : i + 1])
