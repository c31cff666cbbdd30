"""A SavedModel's ``regularization_losses`` in ``model.losses``, as ``tensorflow_hub`` has them.

``tensorflow_hub.KerasLayer`` adds one callable loss per entry of the model's
``regularization_losses``; each returns the loss while the layer is trainable and 0
otherwise. Keras 3 has no callable losses, and ``add_loss`` inside ``call`` shows only
after a call and keeps the value of that call. So the layer reports them through Keras 3's
own-loss hook (``Layer._get_own_losses``, which ``model.losses`` and ``fit`` read once per
layer), evaluated when asked:

- ``model.losses`` holds them before any call, one entry per SavedModel loss;
- setting ``layer.trainable`` takes effect at once: a frozen layer's entries are 0;
- ``fit`` counts each exactly once.

Example:
    >>> import tensorflow as tf
    >>> [float(x) for x in model_losses([lambda: tf.constant(0.5)], trainable=True)]
    [0.5]
    >>> [float(x) for x in model_losses([lambda: tf.constant(0.5)], trainable=False)]
    [0.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

__all__ = ["model_losses"]


def model_losses(losses: Sequence[Callable[[], Any]], *, trainable: bool) -> list[Any]:
    """One scalar per loss callable: its value while ``trainable``, else 0.

    Args:
        losses: the SavedModel's zero-argument loss callables.
        trainable: whether the layer trains now.

    Returns:
        The scalar losses, in the model's order.
    """
    if trainable:
        return [loss() for loss in losses]
    return [tf.zeros([], tf.float32) for _ in losses]
